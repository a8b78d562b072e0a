// Reading an asciicast v2 file (as apps/recordings writes it) before handing it to the
// player: the markers for the page's list, and a text the player can always parse. A
// segment still being recorded, or cut off by a crash, may end in half a line: dropped.

/**
 * @param {string} text the .cast file
 * @returns {{data: string, cols: number, rows: number, markers: {index: number, time: number, label: string}[], duration: number}}
 */
export function readCast(text) {
  const lines = text.split('\n');
  const header = JSON.parse(lines[0]);
  if (!header || header.version !== 2) throw new Error('not an asciicast v2 file');
  const kept = [lines[0]];
  const markers = [];
  let duration = 0;
  for (const line of lines.slice(1)) {
    if (!line.startsWith('[')) continue;
    let event;
    try {
      event = JSON.parse(line);
    } catch {
      continue; // the unfinished last line of a segment still being written
    }
    if (!Array.isArray(event) || typeof event[0] !== 'number') continue;
    kept.push(line);
    duration = Math.max(duration, event[0]);
    if (event[1] === 'm') markers.push({ index: markers.length, time: event[0], label: String(event[2]) });
  }
  return { data: kept.join('\n') + '\n', cols: header.width, rows: header.height, markers, duration };
}

/** 75.4 → "1:15", 3725 → "1:02:05". */
export function formatTime(seconds) {
  const s = Math.max(0, Math.floor(seconds));
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const ss = String(s % 60).padStart(2, '0');
  return h > 0 ? `${h}:${String(m).padStart(2, '0')}:${ss}` : `${m}:${ss}`;
}
