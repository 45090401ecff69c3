import { NextResponse } from "next/server";
import { DEFAULTS, prisma, STATUS_TEXT, template } from "../../../lib/db";

export async function GET(req: Request) {
  const sessionId = req.headers.get("x-session-id");
  const session = sessionId ? await prisma.session.findUnique({ where: { id: sessionId } }) : null;
  if (!session) {
    return NextResponse.json({ error: STATUS_TEXT.get(404) }, { status: 404 });
  }
  const seen = new Map<string, number>();
  for (const item of session.items) seen.set(item.id, (seen.get(item.id) ?? 0) + 1);
  return NextResponse.json({ items: [...seen], title: template("items"), ...DEFAULTS });
}
