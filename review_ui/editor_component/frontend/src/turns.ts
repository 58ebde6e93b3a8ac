// Turn edits as pure functions over the one turn shape
// {speaker, start, end, text, words: [{text, start, end, probability}]}; each returns new turns.

// `typed`: a person typed it; `spread`: its times are an even share of the turn, not an alignment (the submission
// aligns a turn whose words are all spread). Both are sent only when true, as the server's turn type says.
export interface Word { text: string; start: number; end: number; probability: number; typed?: boolean; spread?: boolean }
// `id`: stable while the turn exists (a split's second half and a new turn get a new one, a merge keeps
// the first turn's); saved alongside the turns so a reviewer's comment stays on its turn.
export interface Turn { speaker: string; start: number; end: number; text: string; words: Word[]; id?: string }

export const MIN_TURN_S = 0.01;
/** How far a word may start before the previous one ends (rounding): review_ui/edit_limits.py WORD_OVERLAP_S. */
export const WORD_OVERLAP_S = 0.02;

const r3 = (x: number): number => Math.round(x * 1000) / 1000;
export const tokens = (text: string): string[] => text.split(/\s+/).filter(Boolean);

export const newId = (): string => "u" + Math.random().toString(36).slice(2, 12) + Date.now().toString(36).slice(-4);

/** The turns with the given ids (one per turn), fresh ids where none is given. */
export function withIds(turns: Turn[], ids?: (string | undefined)[] | null): Turn[] {
  return turns.map((t, i) => ({ ...t, id: (ids && ids[i]) || t.id || newId() }));
}

export function clone(turns: Turn[]): Turn[] {
  return turns.map((t) => ({ ...t, words: t.words.map((w) => ({ ...w })) }));
}

/** Whether the timed words still spell the text (false once a person retyped a word). */
export function wordsMatch(turn: Turn): boolean {
  const toks = tokens(turn.text);
  return turn.words.length > 0 && turn.words.length === toks.length && turn.words.every((w, i) => w.text.trim() === toks[i]);
}

/** The turn with new text; timed words are kept only while they still spell it. */
export function withText(turns: Turn[], i: number, text: string): Turn[] {
  const out = turns.slice();
  const changed = { ...turns[i], text };
  out[i] = wordsMatch(changed) ? changed : { ...changed, words: [] };
  return out;
}

/** Split turn i at a character offset of its text: timed words go with their tokens, else the time is shared by characters. */
export function splitAt(turns: Turn[], i: number, offset: number): Turn[] {
  const turn = turns[i];
  const before = turn.text.slice(0, offset).trim();
  const after = turn.text.slice(offset).trim();
  if (!before || !after) throw new Error("put the text cursor between two words to split");
  const cut = tokens(before).length;
  let at: number;
  const aligned = wordsMatch(turn);
  if (aligned) at = turn.words[cut].start;
  else at = turn.start + ((turn.end - turn.start) * before.length) / (before.length + after.length + 1);
  at = Math.min(Math.max(at, turn.start + MIN_TURN_S), turn.end - MIN_TURN_S);
  const first = wordsInside({ ...turn, end: r3(at), text: before, words: aligned ? turn.words.slice(0, cut) : [] });
  const second = wordsInside({ ...turn, id: newId(), start: r3(at), text: after, words: aligned ? turn.words.slice(cut) : [] });
  return [...turns.slice(0, i), first, second, ...turns.slice(i + 1)];
}

/** Join turn i onto the turn before it (the earlier turn's speaker is kept). */
export function mergeWithPrevious(turns: Turn[], i: number): Turn[] {
  if (i <= 0) throw new Error("the first turn has no previous turn to merge with");
  const a = turns[i - 1], b = turns[i];
  // a backchannel under the earlier turn has its words inside the earlier turn's: joined, they would not follow one
  // another in time (the server refuses that), so the merged turn's words are spread again and aligned on the server
  const follows = b.words.length === 0 || a.words.length === 0
    || b.words[0].start >= a.words[a.words.length - 1].end - WORD_OVERLAP_S;
  const aligned = wordsMatch(a) && wordsMatch(b) && follows;
  const merged: Turn = { ...a, start: Math.min(a.start, b.start), end: Math.max(a.end, b.end),
    text: [a.text.trim(), b.text.trim()].filter(Boolean).join(" "), words: aligned ? [...a.words, ...b.words] : [] };
  return [...turns.slice(0, i - 1), merged, ...turns.slice(i + 1)];
}

export function deleteTurn(turns: Turn[], i: number): Turn[] {
  return [...turns.slice(0, i), ...turns.slice(i + 1)];
}

export function addTurnAfter(turns: Turn[], i: number, duration: number): Turn[] {
  const prev = turns[i];
  const start = prev ? prev.end : 0;
  const end = Math.min(start + 1, duration);
  if (end - start < MIN_TURN_S) throw new Error("no room for a new turn after the end of the audio");
  const turn: Turn = { speaker: prev ? prev.speaker : "spk-1", start: r3(start), end: r3(end), text: "", words: [], id: newId() };
  return [...turns.slice(0, i + 1), turn, ...turns.slice(i + 1)];
}

export function setSpeaker(turns: Turn[], i: number, speaker: string): Turn[] {
  const out = turns.slice();
  out[i] = { ...turns[i], speaker };
  return out;
}

/** Move one edge of turn i to `at` seconds, kept inside 0..duration and at least MIN_TURN_S long; its words are
 * kept inside it (`wordsInside`). Boundary drags on the waveform and nudges by key both come here. */
export function moveEdge(turns: Turn[], i: number, edge: "start" | "end", at: number, duration: number): Turn[] {
  const turn = turns[i];
  const value = edge === "start" ? Math.min(Math.max(0, at), turn.end - MIN_TURN_S) : Math.max(Math.min(duration, at), turn.start + MIN_TURN_S);
  const out = turns.slice();
  out[i] = wordsInside({ ...turn, [edge]: r3(value) });
  return out;
}

/** The turn with its words inside its bounds (the server refuses a word outside its turn). A word the bounds cut
 * is clipped to the part inside; when an edge moved past a whole word, the words are spread over the turn by
 * their length (as the server spreads a draft's retyped turn) and marked `spread`, so the submission aligns
 * them to the audio again. Words already inside are left as they are (the same turn object when all are). */
export function wordsInside(turn: Turn): Turn {
  const { start, end, words } = turn;
  if (words.every((w) => w.start >= start && w.end <= end)) return turn;
  if (words.some((w) => w.end <= start || w.start >= end)) return { ...turn, words: spread(words, start, end) };
  return { ...turn, words: words.map((w) => (w.start >= start && w.end <= end ? w
    : { ...w, start: r3(Math.max(w.start, start)), end: r3(Math.min(w.end, end)) })) };
}

/** `words` laid end to end over start..end, each a share by its length plus one (asr.alignment.spread's rule),
 * keeping their text, probability and typed mark, marked `spread`. */
export function spread(words: Word[], start: number, end: number): Word[] {
  const total = words.reduce((sum, w) => sum + w.text.length + 1, 0);
  let at = start;
  return words.map((w) => {
    const step = ((end - start) * (w.text.length + 1)) / total;
    const out: Word = { ...w, start: r3(at), end: r3(Math.min(at + step, end)), spread: true };
    at += step;
    return out;
  });
}

export function renameSpeaker(turns: Turn[], from: string, to: string): Turn[] {
  if (!to.trim()) throw new Error("the new speaker name may not be empty");
  return turns.map((t) => (t.speaker === from ? { ...t, speaker: to.trim() } : t));
}

/** Replace every occurrence of `find` in every turn's text; returns the turns and how many were replaced. */
export function replaceAll(turns: Turn[], find: string, replacement: string): [Turn[], number] {
  if (!find) return [turns, 0];
  let count = 0;
  let out = turns;
  turns.forEach((t, i) => {
    const parts = t.text.split(find);
    if (parts.length > 1) {
      count += parts.length - 1;
      out = withText(out, i, parts.join(replacement));
    }
  });
  return [out, count];
}

/** Whether two turn lists store the same (as the server would: text trimmed, times to the millisecond); no allocation. */
export function sameTurns(a: Turn[], b: Turn[]): boolean {
  if (a === b) return true;
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) {
    const x = a[i], y = b[i];
    if (x === y) continue;
    if (x.speaker !== y.speaker || r3(x.start) !== r3(y.start) || r3(x.end) !== r3(y.end) || x.text.trim() !== y.text.trim() ||
        x.words.length !== y.words.length) return false;
    for (let j = 0; j < x.words.length; j++) {
      const v = x.words[j], w = y.words[j];
      if (v.text !== w.text || v.start !== w.start || v.end !== w.end || v.probability !== w.probability ||
          !!v.typed !== !!w.typed || !!v.spread !== !!w.spread) return false;
    }
  }
  return true;
}

// Each turn's stored form, kept while the turn object lives (edits replace turns, never change them): a save of a
// one-hour task copies only the turns edited since the last save, not ~1,500 turns and their words.
const stored = new WeakMap<Turn, Turn>();

/** What the server stores: trimmed text, times in milliseconds precision (ids travel beside the turns). */
export function normalised(turns: Turn[]): Turn[] {
  return turns.map((t) => {
    let out = stored.get(t);
    if (!out) {
      out = { speaker: t.speaker, start: r3(t.start), end: r3(t.end), text: t.text.trim(),
        words: t.words.map((w) => ({ text: w.text, start: w.start, end: w.end, probability: w.probability,
          ...(w.typed ? { typed: true } : {}), ...(w.spread ? { spread: true } : {}) })) };
      stored.set(t, out);
    }
    return out;
  });
}

/** The words [start, end) of a turn's text (split on whitespace, as the server counts them) that a character
 * selection [from, to) touches; a bare cursor takes the word it is in. Null when it touches no word. */
export function wordRange(text: string, from: number, to: number): [number, number] | null {
  const words = [...text.matchAll(/\S+/g)].map((m) => [m.index!, m.index! + m[0].length]);
  if (to < from) [from, to] = [to, from];
  const touched = words.map(([a, b], k) => ((from === to ? a <= from && from <= b : a < to && from < b) ? k : -1)).filter((k) => k >= 0);
  return touched.length ? [touched[0], touched[touched.length - 1] + 1] : null;
}

/** `after` (HTML-escaped text) with each word that is not in `before` (in order: their longest common
 * subsequence of words) wrapped in <mark>, so the conflict view shows which words each side changed. */
export function wordDiff(before: string, after: string): string {
  const a = before.split(" "), b = after.split(" ");
  const common: number[][] = Array.from({ length: a.length + 1 }, () => new Array<number>(b.length + 1).fill(0));
  for (let i = a.length - 1; i >= 0; i--) {
    for (let j = b.length - 1; j >= 0; j--) {
      common[i][j] = a[i] === b[j] ? common[i + 1][j + 1] + 1 : Math.max(common[i + 1][j], common[i][j + 1]);
    }
  }
  const out: string[] = [];
  let i = 0, j = 0;
  while (j < b.length) {
    if (i < a.length && a[i] === b[j]) { out.push(b[j]); i++; j++; }
    else if (i < a.length && common[i + 1][j] >= common[i][j + 1]) i++;
    else { out.push(`<mark>${b[j]}</mark>`); j++; }
  }
  return out.join(" ");
}
