// The Prisma client singleton of the Next.js docs: one connection pool per process is fine.
import { PrismaClient } from "@prisma/client";

const globalForPrisma = globalThis as unknown as { prisma?: PrismaClient };
export const prisma = globalForPrisma.prisma ?? new PrismaClient();
if (process.env.NODE_ENV !== "production") globalForPrisma.prisma = prisma;

export type SessionMap = Map<string, { id: string; turns: string[] }>;
export interface SessionRow {
  id: string;
  turns: string[];
}

export const STATUS_TEXT = new Map<number, string>([
  [404, "Not found"],
  [409, "Conflict"],
]);
export const ROUTES = Object.freeze({ items: "/api/items" });
export const DEFAULTS = { pageSize: 20, sessionTtlSeconds: 3600 };
const compiledTemplates = new Map<string, string>();

export function template(name: string): string {
  if (!compiledTemplates.has(name)) compiledTemplates.set(name, name.toUpperCase());
  return compiledTemplates.get(name)!;
}
