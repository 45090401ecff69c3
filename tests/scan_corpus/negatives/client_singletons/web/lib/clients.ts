import { PrismaClient } from "@prisma/client";
import { Redis } from "@upstash/redis";
import pino from "pino";

const g = globalThis as unknown as { prisma?: PrismaClient; redisClient?: Redis; log?: pino.Logger };
export const prisma = (g.prisma ??= new PrismaClient());
export const redisClient = g.redisClient ?? (g.redisClient = new Redis({ url: "", token: "" }));
export const log = ((globalThis as any).log ||= pino());

class EventBus {
  private listeners = new Map<string, Array<(event: string) => void>>();
  on(name: string, listener: (event: string) => void) {
    this.listeners.set(name, [...(this.listeners.get(name) ?? []), listener]);
  }
}
export const bus = new EventBus();
