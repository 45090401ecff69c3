import express from "express";
import session from "express-session";
import RedisStore from "connect-redis";
import { createClient } from "redis";
import { createServer } from "node:http";
import { Server } from "socket.io";
import { createAdapter } from "@socket.io/redis-adapter";

const redis = createClient({ url: process.env.REDIS_URL });
await redis.connect();

const app = express();
app.use(
  session({
    store: new RedisStore({ client: redis }),
    secret: process.env.SESSION_SECRET,
    resave: false,
    saveUninitialized: false,
  }),
);
app.get("/me", (req, res) => res.json({ user: req.session.user ?? null }));

const httpServer = createServer(app);
const io = new Server(httpServer);
io.adapter(createAdapter(redis, redis.duplicate()));
io.on("connection", (socket) => socket.on("join", (room) => socket.join(room)));

httpServer.listen(3000);
