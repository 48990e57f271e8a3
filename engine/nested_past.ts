/**
 * Whether `value` has objects or arrays nested more than `limit` levels
 * deep: what a worker can be sent (engine/worker_pool.ts) and what is worth
 * indenting (`dlq list --json`). It stops at the limit, so it costs what
 * walking the value to that depth does, and never runs out of stack.
 */
export function nestedPast(value: unknown, limit: number): boolean {
  if (typeof value !== "object" || value === null || ArrayBuffer.isView(value)) return false;
  if (limit === 0) return true;
  if (Array.isArray(value)) {
    for (let i = 0; i < value.length; i++) if (nestedPast(value[i], limit - 1)) return true;
    return false;
  }
  for (const key in value) {
    if (nestedPast((value as Record<string, unknown>)[key], limit - 1)) return true;
  }
  return false;
}
