import { createServer } from "node:http";
import { Server } from "socket.io";

const httpServer = createServer();
const io = new Server(httpServer);

io.on("connection", (socket) => {
  socket.on("join", (room) => socket.join(room));
  socket.on("say", ({ room, text }) => io.to(room).emit("said", text));
});

httpServer.listen(3000);
