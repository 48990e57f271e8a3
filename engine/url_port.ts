/**
 * The port a URL names when it is past 65535, which URL parsers refuse
 * with no word of why ("Invalid URL"); else undefined. For the messages of
 * services' URLs (Redis, Postgres), which otherwise spoke of passwords.
 */
export function portOutOfRange(url: string): string | undefined {
  const port = /^[a-z][a-z0-9+.-]*:\/\/(?:[^/?#]*@)?(?:\[[^\]]*\]|[^/?#:@,]*):(\d+)(?:[/?#,]|$)/i
    .exec(url)?.[1];
  return port !== undefined && Number(port) > 65535 ? port : undefined;
}
