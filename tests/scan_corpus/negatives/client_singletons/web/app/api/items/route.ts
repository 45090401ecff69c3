import { bus, log, prisma, redisClient } from "@/lib/clients";

export async function GET(request: Request) {
  const sessionId = new URL(request.url).searchParams.get("session") ?? "";
  bus.on("read", (event) => log.info(event));
  const items = await prisma.item.findMany();
  await redisClient.set(`seen:${sessionId}`, "1");
  const grouped: Record<string, string[]> = {};
  for (const item of items) {
    if (!grouped[item.kind]) {
      grouped[item.kind] = [];
    }
    grouped[item.kind].push(item.name);
  }
  return Response.json(grouped);
}
