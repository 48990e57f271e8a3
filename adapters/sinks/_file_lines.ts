/** One line of a file: its text without the newline, its number from 1, and whether a newline ended it. */
export interface FileLine {
  text: string;
  n: number;
  whole: boolean;
}

/**
 * The lines of `file` from its start, read in chunks of 64 KiB: a file of
 * dead letters outgrows what one string may hold (about 512 MB in V8) long
 * before the disk fills, and read whole it ended the run that appended to
 * it, and `dlq list` with it. A line longer than a chunk is put together
 * once, from its pieces.
 */
export async function* fileLines(file: Deno.FsFile): AsyncGenerator<FileLine> {
  await file.seek(0, Deno.SeekMode.Start);
  const decoder = new TextDecoder();
  const buf = new Uint8Array(64 * 1024);
  let pieces: Uint8Array[] = [];
  let n = 0;
  const line = (last: Uint8Array): string => {
    if (pieces.length === 0) return decoder.decode(last);
    const all = new Uint8Array(pieces.reduce((s, p) => s + p.length, last.length));
    let at = 0;
    for (const p of [...pieces, last]) all.set(p, at), at += p.length;
    pieces = [];
    return decoder.decode(all);
  };
  for (;;) {
    const read = await file.read(buf);
    if (read === null) break;
    const chunk = buf.subarray(0, read);
    let start = 0;
    for (let end = chunk.indexOf(10); end >= 0; end = chunk.indexOf(10, start)) {
      yield { text: line(chunk.subarray(start, end)), n: ++n, whole: true };
      start = end + 1;
    }
    if (start < chunk.length) pieces.push(chunk.slice(start)); // a copy: buf is read into again
  }
  if (pieces.length > 0) yield { text: line(new Uint8Array(0)), n: ++n, whole: false };
}
