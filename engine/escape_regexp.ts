/** `s` with every character a RegExp reads specially escaped: a literal text in a pattern. */
export function escapeRegExp(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
}
