/**
 * Whether a fetch failure happened before the request reached the server:
 * refused, no such host, no route. Deno's fetch says "(Connect)" for
 * those; a connection closed or reset once the request was sent
 * ("(SendRequest)") is the server failing on this request, maybe on one of
 * its inputs, and must not be waited out as the server being away: a
 * server that crashes on one input was asked again twice a second for ten
 * minutes per batch, never splitting the input out.
 */
export function neverConnected(error: unknown): boolean {
  const said: string[] = [];
  for (let e: unknown = error; e instanceof Error && said.length < 5; e = e.cause) {
    said.push(e.message);
  }
  return /\(Connect\)|connection refused|ECONNREFUSED|dns error|ENOTFOUND|EAI_AGAIN|unreachable|no route/i
    .test(said.join("\n"));
}
