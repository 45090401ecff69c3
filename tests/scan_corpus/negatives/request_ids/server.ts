import express from "express";
import { randomBytes } from "node:crypto";

const app = express();
const INSTANCE_KEY = randomBytes(4).toString("hex"); // tells instances apart in the logs
let served = 0;

app.get("/healthz", (req, res) => {
  res.setHeader("X-Request-Id", `${INSTANCE_KEY}-${++served}`);
  res.json({ ok: true });
});
