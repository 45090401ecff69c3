// The browser holds the upstream connection; this server only mints short-lived tokens.
const express = require("express");
const { SignJWT } = require("jose");

const app = express();
app.use(express.json());

const upstreamKey = new TextEncoder().encode(process.env.UPSTREAM_TOKEN_KEY);

app.post("/api/session", async (req, res) => {
  const sessionId = crypto.randomUUID();
  const token = await new SignJWT({ sid: sessionId })
    .setProtectedHeader({ alg: "HS256" })
    .setAudience("voice-upstream")
    .setExpirationTime("60s")
    .sign(upstreamKey);
  res.status(201).json({ sessionId, connect: { url: process.env.UPSTREAM_URL, token } });
});

app.listen(3000);
