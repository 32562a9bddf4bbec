import type { Queryable } from '../db/index.js';
import { uuidv7 } from '../util/ids.js';

export interface Client {
  id: string;
  organizationId: string;
  name: string;
  externalId: string | null;
  createdAt: Date;
}

interface ClientRow {
  id: string;
  organization_id: string;
  name: string;
  external_id: string | null;
  created_at: Date;
}

function toClient(row: ClientRow): Client {
  return {
    id: row.id,
    organizationId: row.organization_id,
    name: row.name,
    externalId: row.external_id,
    createdAt: row.created_at,
  };
}

export async function createClient(
  db: Queryable,
  organizationId: string,
  input: { name: string; externalId?: string | null },
): Promise<Client> {
  const { rows } = await db.query<ClientRow>(
    `INSERT INTO stepwise.clients (id, organization_id, name, external_id) VALUES ($1, $2, $3, $4)
     RETURNING id, organization_id, name, external_id, created_at`,
    [uuidv7(), organizationId, input.name, input.externalId ?? null],
  );
  return toClient(rows[0]!);
}

export async function findClient(db: Queryable, organizationId: string, clientId: string): Promise<Client | null> {
  const { rows } = await db.query<ClientRow>(
    `SELECT id, organization_id, name, external_id, created_at FROM stepwise.clients
      WHERE organization_id = $1 AND id = $2`,
    [organizationId, clientId],
  );
  return rows[0] ? toClient(rows[0]) : null;
}

export async function listClients(
  db: Queryable,
  organizationId: string,
  opts: { after?: string | undefined; limit: number },
): Promise<{ items: Client[]; nextCursor: string | null }> {
  const { rows } = await db.query<ClientRow>(
    `SELECT id, organization_id, name, external_id, created_at FROM stepwise.clients
      WHERE organization_id = $1 AND ($2::uuid IS NULL OR id < $2::uuid)
      ORDER BY id DESC LIMIT $3`,
    [organizationId, opts.after ?? null, opts.limit + 1],
  );
  const items = rows.slice(0, opts.limit).map(toClient);
  return { items, nextCursor: rows.length > opts.limit ? items[items.length - 1]!.id : null };
}
