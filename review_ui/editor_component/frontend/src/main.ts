// The turn editor: the whole editing loop runs here, in the browser; the server (Python) is asked only
// to save (with the optimistic version check), to submit, and for the audio window in view.
//
// Nothing typed is lost: every keystroke updates the turns at once (no blur needed), the draft is kept
// in localStorage under task+version, saves are debounced and retried until the server acknowledges
// them, and leaving with unsaved edits asks first.

import { onRender, setComponentValue, setFrameHeight } from "./streamlit";
import * as T from "./turns";
import { Turn } from "./turns";
import { KeyMap, actionFor } from "./keymap";
import { dropDraft, draftsOf, keepDraft } from "./drafts";
import { AudioWindow, PALETTE, Waveform } from "./waveform";
import { drawSpectrogram } from "./spectrogram";
import { VirtualRows } from "./rows";

interface TaskInfo { pk: number; title: string; editable: boolean; duration: number; lo: number; hi: number;
  reviewing?: boolean; pii_kinds?: string[] }  // reviewing: a reviewer's edit (saved as such; accepting is theirs, no submit)
interface PiiSpan { turn: number; word_start: number; word_end: number; kind: string; source: string; words?: string }
interface PiiRequest { action: "mark" | "unmark"; turn: number; word_start: number; word_end: number; kind: string }
interface Conflict { theirs_version: number; theirs_author: string; theirs_turns: Turn[] }
interface TurnSpec { start: number; end: number; text: string }  // a turn the server aligns words of, by its text and bounds
interface AlignedTurn extends TurnSpec { words: T.Word[] }
interface Ack { mount: string; seq: number; op: string; ok: boolean; version?: number; error?: string; conflict?: Conflict;
  pii?: PiiSpan[]; aligned?: AlignedTurn[]; aligning?: boolean }  // aligned: words for turns this tab named as pending
interface Message { mount: string; seq: number; attempt: number; op: "save" | "submit" | "window" | "pii" | "words";
  base_version: number; turns: Turn[] | null; turn_ids: (string | undefined)[] | null; pii: PiiRequest | null;
  pending: TurnSpec[] | null;  // the turns shown without true word times (spread or none): the answer brings aligned ones
  window: { start: number; end: number } | null; turn: number;
  have: string; doc_version: number }  // the audio window and the saved version this tab holds (the server then skips them)

const SAVE_DEBOUNCE_MS = 700;
const RETRY_MS = 5000;
const RELOAD_AFTER_ATTEMPTS = 3;  // repeats unanswered while the server is up again: reload (see reloadIfServerIsBack)
const UNDO_COALESCE_MS = 1200;
const NUDGE_S = 0.1;
const DRAFT_WRITE_MS = 150;  // a one-hour task's draft is a few hundred KB: not rewritten on every key...
const DRAFT_IDLE_MS = 600;  // ...but in the browser's idle time, at the latest this long after the debounce
const WORDS_POLL_MS = 1500;  // while the server aligns a draft's turns in the background, ask for their words this often
const WORDS_POLLS = 40;  // at most this many times after a save

const $ = <E extends HTMLElement>(id: string): E => document.getElementById(id) as E;
const mount = Math.random().toString(36).slice(2);

let task: TaskInfo | null = null;
let keymap: KeyMap = {};
let turns: Turn[] = [];
let saved: Turn[] = [];
let base = 0;
let selected = 0;
let submitted = false;
let conflict: Conflict | null = null;
let undoStack: { turns: Turn[]; selected: number }[] = [];
let redoStack: { turns: Turn[]; selected: number }[] = [];
let lastTextEdit = { turn: -1, at: 0 };
let seq = 0;
let inflight: Message | null = null;
let inflightAt = 0;
let pendingOp: "save" | "submit" | null = null;
let wantedWindow: { start: number; end: number } | null = null;
let saveTimer = 0;
let audioKey = "";
let audioUrl = "";
let playWhenLoaded: number | null = null;
let statusError = "";
let pii: PiiSpan[] = [];  // personal-data spans of the saved version, with the words they cover
let pendingPii: PiiRequest | null = null;
let lastArea: HTMLTextAreaElement | null = null;  // where the person last selected text (a toolbar click takes the focus)
let wavBytes: Uint8Array | null = null;  // the window's WAV, for the spectrogram
let unanswered = false;
let wordsWanted = false;  // ask the server for the words it aligned in the background
let wordsPolls = 0;  // the message in flight was sent again: the server did not answer it in time

const audio = new Audio();
audio.preload = "auto";
audio.id = "player";
audio.setAttribute("aria-label", "Audio of the window in view");
document.body.appendChild(audio);  // no controls of its own: the toolbar and the keys drive it
const wave = new Waveform($<HTMLCanvasElement>("wave"), {
  seek: (t) => playFrom(t),
  select: (i) => select(i, true),
  moveEdge: (i, edge, t) => edit(T.moveEdge(turns, i, edge, t, task!.duration), i),
});
const rows = new VirtualRows<Turn>($("turns"), (i) => rowElement(i), (el, i, changed) => patchRow(el, i, changed), () => selected,
  (t) => t.id!);

// ---------------------------------------------------------------- state and saving

let dirtyMemo = { turns: [] as Turn[], saved: [] as Turn[], value: false };
/** Whether the working turns differ from the saved ones (memoised: edits replace the arrays, never mutate them). */
function dirty(): boolean {
  if (dirtyMemo.turns !== turns || dirtyMemo.saved !== saved) dirtyMemo = { turns, saved, value: !T.sameTurns(turns, saved) };
  return dirtyMemo.value;
}

function setStatus(): void {
  const el = $("status");
  el.className = statusError ? "error" : dirty() ? "dirty" : "";
  if (submitted) el.textContent = "Submitted. Thank you!";
  else if (statusError) el.textContent = statusError;
  else if (conflict) el.textContent = "Conflict: choose below";
  else if (inflight && unanswered) el.textContent = "Server not answering; your changes are kept in this browser and will be saved";
  else if (inflight) el.textContent = "Saving…";
  else if (dirty()) el.textContent = "Unsaved changes";
  else el.textContent = `All changes saved · version ${base}`;
}

let keepTimer = 0;
let keepIdle = 0;

/** Keep the draft in this browser once edits pause for DRAFT_WRITE_MS, in idle time (writing a long task's draft
 * takes milliseconds that would delay the next key's frame), within DRAFT_IDLE_MS more at the latest; at once
 * when the page is hidden or left (`now`). */
function keepLocally(now = false): void {
  window.clearTimeout(keepTimer);
  if (keepIdle) { window.cancelIdleCallback(keepIdle); keepIdle = 0; }
  if (!now) {
    keepTimer = window.setTimeout(() => {
      keepIdle = window.requestIdleCallback(() => { keepIdle = 0; keepLocally(true); }, { timeout: DRAFT_IDLE_MS });
    }, DRAFT_WRITE_MS);
    return;
  }
  if (!task) return;
  if (dirty()) keepDraft(task.pk, base, turns);
  else dropDraft(task.pk, base);
}

function scheduleSave(delay = SAVE_DEBOUNCE_MS): void {
  window.clearTimeout(saveTimer);
  saveTimer = window.setTimeout(() => requestSave("save"), delay);
}

/** `afterFrame`: send once the frame showing the action is painted (next or previous turn): handing a long task's
 * turns to Streamlit takes milliseconds that would delay that frame. Leaving the page or the frame sends at once. */
function requestSave(op: "save" | "submit", afterFrame = false): void {
  if (!task || !task.editable || submitted) return;
  if (op === "submit" || pendingOp === null) pendingOp = op;
  if (afterFrame) pumpAfterFrame();
  else pump();
}

let pumpQueued = false;

/** `pump` right after the coming frame is painted (at once in a hidden page, which paints no frames). */
function pumpAfterFrame(): void {
  if (document.visibilityState === "hidden") { pump(); return; }
  if (pumpQueued) return;
  pumpQueued = true;
  window.requestAnimationFrame(() => window.setTimeout(() => { pumpQueued = false; pump(); }, 0));
}

/** Send the next message when none is waiting for its acknowledgement (one in flight, so saves never race). */
function pump(): void {
  if (!task || inflight || conflict) return;
  let op: Message["op"] | null = null;
  if (pendingOp === "submit") op = "submit";
  else if ((pendingOp === "save" || pendingPii) && dirty()) op = "save";  // a mark applies to saved words: save first
  else if (pendingPii) op = "pii";
  else if (wantedWindow) op = "window";
  else if (wordsWanted && pendingWords().length) op = "words";
  pendingOp = null;
  if (op !== "window" && op !== "pii") wordsWanted = false;  // a save asks for the words too
  if (op === null) { setStatus(); return; }
  const carries = op !== "window" && op !== "words";
  if (carries) window.clearTimeout(saveTimer);  // this save carries every edit so far
  const win = wantedWindow || currentWindow();
  inflight = { mount, seq: ++seq, attempt: 0, op, base_version: base, turns: carries ? T.normalised(turns) : null,
    turn_ids: carries ? turns.map((t) => t.id) : null, pii: op === "pii" ? pendingPii : null,
    pending: op === "save" || op === "words" ? pendingWords() : null,
    window: win, turn: selected + 1, have: audioKey, doc_version: base };
  if (op === "pii") pendingPii = null;
  inflightAt = Date.now();
  setComponentValue(inflight);
  setStatus();
}

window.setInterval(() => {
  if (inflight && Date.now() - inflightAt > RETRY_MS) {  // the server did not answer (restarting, lost connection): ask again
    inflight = { ...inflight, attempt: inflight.attempt + 1 };
    inflightAt = Date.now();
    setComponentValue(inflight);
    statusError = "";
    unanswered = true;
    setStatus();
    if (inflight.attempt >= RELOAD_AFTER_ATTEMPTS) reloadIfServerIsBack();
  }
}, 1000);

let reloading = false;

/** The editor lives in a Streamlit fragment: a restarted server's new session does not know that fragment and drops
 * our repeats unanswered. Once the server answers its health check again, reload the page: the session cookie signs
 * the person in again and the draft kept in this browser is restored and saved. */
function reloadIfServerIsBack(): void {
  let health: string;
  try { health = new URL("_stcore/health", window.parent.location.href).href; } catch { return; }
  fetch(health, { cache: "no-store" }).then((r) => {
    if (!r.ok || reloading || !inflight) return;
    reloading = true;
    keepLocally(true);
    window.parent.location.reload();
  }).catch(() => { /* still down: the next repeat asks again */ });
}

function onAck(ack: Ack): void {
  if (!inflight || ack.mount !== mount || ack.seq !== inflight.seq) return;
  const sent = inflight;
  inflight = null;
  unanswered = false;
  if (sent.op === "window") { wantedWindow = null; pump(); return; }
  if (sent.op === "words") { takeAligned(ack); pump(); return; }
  if (ack.pii) takePii(ack.pii, sent.turns!);
  if (ack.ok && ack.version !== undefined) {
    dropDraft(task!.pk, base);
    base = ack.version;
    saved = sent.turns!;
    statusError = "";
    if (sent.op === "submit") {
      submitted = true;
      task!.editable = false;
      renderAll();
    }
    keepLocally(true);
    wordsPolls = 0;
    takeAligned(ack);
    if (dirty()) scheduleSave(0);
  } else if (ack.conflict) {
    conflict = ack.conflict;
    if (sent.op === "submit") pendingOp = "submit";
    renderNotice();
  } else {
    statusError = `${sent.op === "pii" ? "Not marked" : "Not saved"}: ${ack.error || "the server refused it"}`;
  }
  setStatus();
  pump();
}

// ---------------------------------------------------------------- words aligned in the background

const specKey = (t: TurnSpec): string => `${Math.round(t.start * 1000)}|${Math.round(t.end * 1000)}|${t.text.trim()}`;

/** A turn with text whose words are not true timings: none (retyped) or spread by length until aligned. */
function needsWords(t: Turn): boolean {
  return t.text.trim() !== "" && (!T.wordsMatch(t) || t.words.every((w) => w.spread));
}

function pendingWords(): TurnSpec[] {
  return turns.filter(needsWords).map((t) => ({ start: t.start, end: t.end, text: t.text.trim() }));
}

/** Put the aligned words the server sent in place of spread or missing ones (same text and bounds only; no undo
 * step: the server already holds them), and ask again later while it is still aligning. */
function takeAligned(ack: Ack): void {
  const found = new Map((ack.aligned || []).map((a) => [specKey(a), a.words]));
  if (found.size) {
    const changed: number[] = [];
    turns = turns.map((t, i) => {
      const words = needsWords(t) ? found.get(specKey(t)) : undefined;
      if (!words) return t;
      changed.push(i);
      return { ...t, words: words.map((w) => ({ ...w })) };
    });
    saved = saved.map((t) => {
      const words = found.get(specKey(t));
      return words ? { ...t, words: words.map((w) => ({ ...w })) } : t;
    });
    if (changed.length) {
      rows.items = turns;
      wave.turns = turns;
      rows.render();  // the rows of the changed turns are patched in place (their words only)
      shownWord = null;
    }
  }
  if (ack.aligning && wordsPolls < WORDS_POLLS) {
    wordsPolls++;
    window.setTimeout(() => { wordsWanted = true; pump(); }, WORDS_POLL_MS);
  }
}

// ---------------------------------------------------------------- edits and undo

/** Edits never mutate a turn or the list, so a snapshot is the list itself. */
function snapshot(): { turns: Turn[]; selected: number } { return { turns, selected }; }

/** Apply an edit (undoable), keep it locally soon and save it soon; `caretAfter`: put the text cursor of the
 * selected turn there (split and merge), else where it was. */
function edit(next: Turn[], nextSelected = selected, textOf = -1, caretAfter: number | null = null): void {
  const now = Date.now();
  const coalesce = textOf >= 0 && lastTextEdit.turn === textOf && now - lastTextEdit.at < UNDO_COALESCE_MS;
  if (!coalesce) { undoStack.push(snapshot()); redoStack = []; }
  lastTextEdit = textOf >= 0 ? { turn: textOf, at: now } : { turn: -1, at: 0 };
  const typing = caretAfter !== null || isTyping(), caret = caretAfter ?? caretOffset();
  turns = next;
  selected = Math.max(0, Math.min(nextSelected, turns.length - 1));
  keepLocally();
  scheduleSave();
  if (textOf >= 0) {
    rows.items = turns;
    rows.render();  // the typed-in row is patched (its words and marks), the field already holds the text
  }
  else updateRows(typing, caret);
  drawWave();
  setStatus();
}

function tryEdit(make: () => Turn[], nextSelected = selected, caretAfter: number | null = null): void {
  if (!task || !task.editable) return;
  try {
    edit(make(), nextSelected, -1, caretAfter);
    statusError = "";
  } catch (problem) {
    statusError = (problem as Error).message;
  }
  setStatus();
}

function undo(): void {
  const step = undoStack.pop();
  if (!step) return;
  redoStack.push(snapshot());
  restore(step);
}

function redo(): void {
  const step = redoStack.pop();
  if (!step) return;
  undoStack.push(snapshot());
  restore(step);
}

function restore(step: { turns: Turn[]; selected: number }): void {
  const typing = isTyping(), caret = caretOffset();
  turns = step.turns;
  selected = Math.min(step.selected, turns.length - 1);
  lastTextEdit = { turn: -1, at: 0 };
  keepLocally();
  scheduleSave();
  updateRows(typing, caret);
  drawWave();
  setStatus();
}

/** Patch only the rendered rows whose turn changed (by reference), renumber the rows after them, and select. */
function updateRows(typing: boolean, caret: number | null): void {
  if (speakers().join("\n") !== renderedSpeakers) renderTurns();
  else {
    rows.items = turns;
    rows.render();
    wave.turns = turns;
    renderPii();
  }
  select(selected, typing, typing ? caret : null);
}

const shownHtml = new WeakMap<Element, string>();

/** Set an element's HTML only when it differs from what was set last (no layout for an unchanged part). */
function setHtml(el: Element, html: string): void {
  if (shownHtml.get(el) === html) return;
  shownHtml.set(el, html);
  el.innerHTML = html;
}

/** A kept row now shows turn i: renumbered when its index moved, its fields patched (only those that differ)
 * when the turn changed. Its text field is the same element, so it keeps the focus and the caret. */
function patchRow(row: HTMLElement, i: number, changed: boolean): void {
  row.classList.toggle("selected", i === selected);
  const moved = row.dataset.i !== String(i);
  if (moved) {
    row.dataset.i = String(i);
    row.querySelector(".num")!.textContent = String(i + 1);
    row.querySelector("select")!.setAttribute("aria-label", `Turn ${i + 1} speaker`);
    row.querySelector("textarea")!.setAttribute("aria-label", `Turn ${i + 1} text`);
  }
  if (!changed && !moved) return;
  const t = turns[i];
  if (changed) {
    const colour = PALETTE[speakerNames.indexOf(t.speaker) % PALETTE.length];
    const num = row.querySelector<HTMLElement>(".num")!;
    if (num.dataset.colour !== colour) { num.dataset.colour = colour; num.style.borderLeftColor = colour; }
    const box = row.querySelector("select")!;
    if (box.value !== t.speaker) box.value = t.speaker;
    const times = row.querySelector(".times")!, span = `${fmt(t.start)}–${fmt(t.end)} s`;
    if (times.textContent !== span) times.textContent = span;
    const area = row.querySelector("textarea")!;
    if (area.value !== t.text) area.value = t.text;
  }
  setHtml(row.querySelector(".words")!, wordsHtml(t, i));
  setHtml(row.querySelector(".pii-marks")!, piiHtml(i));
}

// ---------------------------------------------------------------- audio

function currentWindow(): { start: number; end: number } {
  const w = wave.window;
  return w ? { start: w.start, end: w.end } : windowAround(turns[selected] ? turns[selected].start : task!.lo);
}

/** The window of the zoom's span that starts `lead` seconds before `t` (kept inside the task's audio). */
function windowAround(t: number, lead = 2): { start: number; end: number } {
  const span = Number(($("zoom") as HTMLSelectElement).value);
  const lo = task!.lo, hi = task!.hi;
  const start = Math.max(lo, Math.min(t - lead, hi - span));
  return { start: Math.max(lo, start), end: Math.min(hi, Math.max(lo, start) + span) };
}

function inWindow(t: number): boolean {
  const w = wave.window;
  return !!w && t >= w.start && t < w.end - 0.05;
}

function askWindow(win: { start: number; end: number }, afterFrame = false): void {
  wantedWindow = win;
  if (afterFrame) pumpAfterFrame();
  else pump();
}

/** The window to load for a turn out of view, ahead in the direction the person moves: going back, it ends 2 s
 * after the turn (the turns before it are in it too), else it starts 2 s before. A window that began 2 s before
 * the turn made every previous-turn key load a new window (turns are shorter than 2 s + the window's span). */
function windowFor(turn: Turn): { start: number; end: number } {
  const span = Number(($("zoom") as HTMLSelectElement).value), lead = span - (turn.end - turn.start) - 2;
  const back = !!wave.window && turn.start < wave.window.start && lead > 2;
  return back ? windowAround(turn.start, lead) : windowAround(turn.start);
}

function playFrom(t: number): void {
  if (!inWindow(t)) { playWhenLoaded = t; askWindow(windowAround(t)); return; }
  audio.currentTime = t - wave.window!.start;
  void audio.play();
}

function togglePlay(): void {
  if (!audio.paused) { audio.pause(); return; }
  const w = wave.window;
  const now = w ? w.start + audio.currentTime : -1;
  const turn = turns[selected];
  if (turn && !(now >= turn.start - 2 && now < turn.end + 2)) playFrom(turn.start);
  else if (w) void audio.play();
}

function tick(): void {
  const w = wave.window;
  if (w) {
    const now = w.start + audio.currentTime;
    const turn = turns[selected];
    if (turn && ($("loop") as HTMLInputElement).checked && !audio.paused && now >= turn.end) audio.currentTime = turn.start - w.start;
    if (wave.playhead !== now) {
      wave.playhead = now;
      drawWaveNow();  // already in a frame
      $("clock").textContent = `${now.toFixed(2)} s`;
      showWordAt(now);
    }
  }
  const label = audio.paused ? "▶ Play" : "⏸ Pause";
  if ($("play").textContent !== label) $("play").textContent = label;  // untouched DOM: no layout of the list per frame
  window.requestAnimationFrame(tick);
}

let shownWord: HTMLElement | null = null;

/** Highlight the selected turn's word being played (its timed words: aligned, or spread until they are). */
function showWordAt(now: number): void {
  const turn = turns[selected];
  const j = turn && T.wordsMatch(turn) ? turn.words.findIndex((w) => w.start <= now && now < w.end) : -1;
  const el = j >= 0 ? rowAt(selected)?.querySelector<HTMLElement>(`.words span[data-w="${j}"]`) || null : null;
  if (el === shownWord) return;
  shownWord?.classList.remove("playing");
  el?.classList.add("playing");
  shownWord = el;
}

function takeAudio(win: AudioWindow | null, bytes: unknown): void {
  if (!win) return;
  const key = `${win.start}-${win.end}`;
  if (key === audioKey) return;
  if (!(bytes instanceof Uint8Array || bytes instanceof ArrayBuffer)) {  // the server thinks this tab holds it: ask
    if (!wantedWindow) askWindow({ start: win.start, end: win.end });
    return;
  }
  audioKey = key;
  wave.window = win;
  wavBytes = bytes instanceof Uint8Array ? bytes : new Uint8Array(bytes as ArrayBuffer);
  drawSpectrogramIfShown();
  if (audioUrl) URL.revokeObjectURL(audioUrl);
  audioUrl = URL.createObjectURL(new Blob([bytes as BlobPart], { type: "audio/wav" }));
  const rate = audio.playbackRate;
  audio.src = audioUrl;
  audio.playbackRate = rate;
  audio.defaultPlaybackRate = rate;
  if (playWhenLoaded !== null && inWindow(playWhenLoaded)) {
    const t = playWhenLoaded;
    playWhenLoaded = null;
    audio.addEventListener("loadedmetadata", () => playFrom(t), { once: true });
  }
  drawWave();
}

// ---------------------------------------------------------------- selection and the address bar

function select(i: number, focus: boolean, caret: number | null = null): void {
  if (!turns.length) return;
  selected = Math.max(0, Math.min(i, turns.length - 1));
  document.querySelectorAll(".turn.selected").forEach((el) => el.classList.remove("selected"));
  rows.render();  // the selected row is always rendered
  const row = rowAt(selected);
  row?.classList.add("selected");
  if (focus) {
    const area = row?.querySelector("textarea") as HTMLTextAreaElement | null;
    if (area) {
      // focusing lays out the document: the field that already has it (a patched row) is left alone
      if (document.activeElement !== area) area.focus({ preventScroll: true });  // no scroll of the page around the frame
      const at = caret === null ? area.value.length : caret;
      if (area.selectionStart !== at || area.selectionEnd !== at) area.setSelectionRange(at, at);
    }
  }
  rows.reveal(selected);
  const turn = turns[selected];
  if (turn && !(inWindow(turn.start) && inWindow(Math.min(turn.end, turn.start + 1)))) askWindow(windowFor(turn), true);
  drawWave();
  nameInAddressBar();
}

let addressTimer = 0;

/** Name the open task and turn in the address bar (soon after the selection settles: each change of the address costs a few ms). */
function nameInAddressBar(): void {
  window.clearTimeout(addressTimer);
  addressTimer = window.setTimeout(nameNow, 120);
}

function nameNow(): void {
  if (!task) return;
  try {
    const top = window.parent;
    const url = new URL(top.location.href);
    url.searchParams.set("task", String(task.pk));
    url.searchParams.set("turn", String(selected + 1));
    if (url.href !== top.location.href) top.history.replaceState(top.history.state, "", url.href);
  } catch { /* another origin: leave the address alone */ }
}

function move(delta: number): void {
  if (dirty()) requestSave("save", true);
  select(selected + delta, true);
}

// ---------------------------------------------------------------- rendering

const escape = (s: string): string => s.replace(/[&<>"]/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;" })[c]!);
const fmt = (t: number): string => t.toFixed(2);

function speakers(): string[] {
  return [...new Set(turns.map((t) => t.speaker))].sort();
}

function wordsHtml(turn: Turn, i = -1): string {
  const marked = new Set(piiOf(i).flatMap((s) => Array.from({ length: s.word_end - s.word_start }, (_, k) => s.word_start + k)));
  return T.wordsMatch(turn)
    ? turn.words.map((w, j) => `<span data-w="${j}" data-start="${w.start}" data-end="${w.end}" class="${w.probability < 0.6 ? "unsure" : ""}${marked.has(j) ? " pii" : ""}" title="${fmt(w.start)} s · model probability ${w.probability.toFixed(2)}">${escape(w.text)}</span>`).join(" ")
    : "";
}

// ---------------------------------------------------------------- personal data

/** Spans from the server, each remembering the words it covered so it is shown only while they are still there. */
function takePii(spans: PiiSpan[], on: Turn[]): void {
  pii = spans.map((s) => ({ ...s, words: on[s.turn] ? T.tokens(on[s.turn].text).slice(s.word_start, s.word_end).join(" ") : "" }));
  renderPii();
}

/** The spans that hold for turn i as it reads now (an unsaved edit may have moved the words: those wait for the save). */
function piiOf(i: number): PiiSpan[] {
  const turn = turns[i];
  if (!turn) return [];
  return pii.filter((s) => s.turn === i && T.tokens(turn.text).slice(s.word_start, s.word_end).join(" ") === s.words);
}

function piiHtml(i: number): string {
  return piiOf(i).map((s) => `<span class="pii-mark"><mark title="${escape(s.kind)} · marked by ${escape(s.source)}">${escape(s.words || "")}</mark>
    <small>${escape(s.kind)}</small>${task && task.editable ? ` <button class="unmark" data-turn="${i}" data-ws="${s.word_start}" data-we="${s.word_end}"
    aria-label="Unmark personal data ${escape(s.words || "")} in turn ${i + 1}">✕</button>` : ""}</span>`).join(" ");
}

let piiRows = new Set<number>();

function renderPii(): void {
  const rows = new Set(pii.map((s) => s.turn));
  for (const i of new Set([...rows, ...piiRows])) {
    const row = rowAt(i);
    if (!row) continue;
    setHtml(row.querySelector(".pii-marks")!, piiHtml(i));
    setHtml(row.querySelector(".words")!, wordsHtml(turns[i], i));
  }
  piiRows = rows;
}

/** Mark (or unmark) the words of the text selection in the turn last typed in; saved edits first, then the mark. */
function markPii(action: "mark" | "unmark"): void {
  if (!task || !task.editable) return;
  const area = isTyping() ? (document.activeElement as HTMLTextAreaElement) : lastArea;
  const row = area?.closest<HTMLElement>(".turn");
  const range = area && row ? T.wordRange(area.value, area.selectionStart, area.selectionEnd) : null;
  if (!area || !row || !range) {
    statusError = "Select the words in a turn's text first";
    setStatus();
    return;
  }
  pendingPii = { action, turn: Number(row.dataset.i), word_start: range[0], word_end: range[1], kind: $<HTMLSelectElement>("pii-kind").value };
  statusError = "";
  pump();
}

function drawSpectrogramIfShown(): void {
  const canvas = $<HTMLCanvasElement>("spectrogram");
  if (canvas.hidden || !wavBytes || !wave.window) return;
  drawSpectrogram(canvas, wavBytes, wave.window.start, wave.window.end);
}

let renderedSpeakers = "";
let speakerNames: string[] = [];

function rowHtml(i: number, names: string[]): string {
  const t = turns[i];
  const readOnly = !task || !task.editable;
  const options = names.map((s, k) => `<option value="${escape(s)}"${s === t.speaker ? " selected" : ""}>${k + 1} ${escape(s)}</option>`).join("");
  const colour = PALETTE[names.indexOf(t.speaker) % PALETTE.length];
  return `<div class="turn${i === selected ? " selected" : ""}" data-i="${i}" role="listitem">
    <div class="num" data-colour="${colour}" style="border-left:4px solid ${colour};padding-left:4px">${i + 1}</div>
    <div class="meta"><select aria-label="Turn ${i + 1} speaker"${readOnly ? " disabled" : ""}>${options}</select>
      <div class="times">${fmt(t.start)}–${fmt(t.end)} s</div></div>
    <div><textarea rows="2" aria-label="Turn ${i + 1} text"${readOnly ? " readonly" : ""}>${escape(t.text)}</textarea>
      <div class="words">${wordsHtml(t, i)}</div><div class="pii-marks">${piiHtml(i)}</div></div></div>`;
}

function rowAt(i: number): HTMLElement | null {
  return rows.rowOf(i);
}

const template = document.createElement("template");

function rowElement(i: number): HTMLElement {
  template.innerHTML = rowHtml(i, speakerNames);
  const row = template.content.firstElementChild as HTMLElement;
  shownHtml.set(row.querySelector(".words")!, wordsHtml(turns[i], i));
  shownHtml.set(row.querySelector(".pii-marks")!, piiHtml(i));
  return row;
}

const isTyping = (): boolean => !!document.activeElement && document.activeElement.tagName === "TEXTAREA";

/** Build every rendered row again (the speaker list changed, or a new version replaced the turns). */
function renderTurns(): void {
  const names = speakers();
  renderedSpeakers = names.join("\n");
  speakerNames = names;
  rows.reset();
  rows.items = turns;
  rows.render();
  wave.turns = turns;
  wave.speakers = names;
  const from = $<HTMLSelectElement>("rename-from");
  from.innerHTML = names.map((s) => `<option>${escape(s)}</option>`).join("");
}

let waveQueued = false;

/** Redraw the waveform in the coming frame, once however many changes this event made (it is drawn before that
 * frame is painted, so the change is still visible in it). */
function drawWave(): void {
  if (waveQueued) return;
  waveQueued = true;
  window.requestAnimationFrame(drawWaveNow);
}

function drawWaveNow(): void {
  waveQueued = false;
  wave.selected = selected;
  wave.turns = turns;
  wave.draw();
}

function renderNotice(): void {
  const box = $("notice");
  box.className = "";
  if (!conflict) { box.innerHTML = ""; return; }
  box.className = "conflict";
  const theirs = conflict.theirs_turns;
  const sameShape = theirs.length === turns.length;
  const rows = [];
  const n = Math.max(theirs.length, turns.length, saved.length);
  for (let i = 0; i < n; i++) {
    const b = saved[i], m = turns[i], t = theirs[i];
    const line = (x?: Turn) => (x ? `${escape(x.speaker)} ${fmt(x.start)}–${fmt(x.end)}: ${escape(x.text)}` : "—");
    if (line(m) === line(t)) continue;
    // a side that left the base as it was has nothing to keep: the other side's change is preselected
    const mineChanged = line(m) !== line(b), theirsChanged = line(t) !== line(b);
    const preferTheirs = theirsChanged && !mineChanged;
    const pick = sameShape ? `<label><input type="radio" name="c${i}" value="mine"${preferTheirs ? "" : " checked"} aria-label="Turn ${i + 1}: keep mine"> mine</label>
      <label><input type="radio" name="c${i}" value="theirs"${preferTheirs ? " checked" : ""} aria-label="Turn ${i + 1}: take theirs"> theirs</label>` : "";
    rows.push(`<div>${i + 1}</div><div>${line(b)}</div><div class="${mineChanged ? "changed" : ""}">${T.wordDiff(line(b), line(m))} ${pick}</div>` +
      `<div class="${theirsChanged ? "changed" : ""}">${T.wordDiff(line(b), line(t))}</div>`);
  }
  box.innerHTML = `<b>Conflict:</b> ${escape(conflict.theirs_author)} saved version ${conflict.theirs_version} after the version ${base} your edits are based on.
    Nothing was overwritten. Differences (base · mine · theirs):
    <div class="diff"><b>turn</b><b>base</b><b>mine</b><b>theirs</b>${rows.join("")}</div>
    ${sameShape ? '<button id="c-pick">Save my choices per turn</button>' : ""}
    <button id="c-mine">Keep mine (save on top of theirs)</button> <button id="c-theirs">Take theirs (discard mine)</button>`;
  const resolve = (chosen: Turn[]) => {
    const c = conflict!;
    conflict = null;
    dropDraft(task!.pk, base);
    base = c.theirs_version;
    saved = T.clone(c.theirs_turns);
    undoStack.push(snapshot());
    turns = T.withIds(chosen);
    keepLocally(true);
    renderNotice();
    renderTurns();
    drawWave();
    if (dirty() || pendingOp === "submit") requestSave(pendingOp === "submit" ? "submit" : "save");
    setStatus();
  };
  $("c-mine").onclick = () => resolve(turns);
  $("c-theirs").onclick = () => { pendingOp = null; resolve(T.clone(theirs)); };
  if (sameShape) $("c-pick").onclick = () => resolve(turns.map((m, i) => {
    const choice = (box.querySelector(`input[name="c${i}"]:checked`) as HTMLInputElement | null)?.value;
    return choice === "theirs" ? theirs[i] : m;
  }));
}

function showOlderDraft(): void {
  if (!task) return;
  const older = draftsOf(task.pk).filter((d) => d.version < base);
  for (const d of older) if (T.sameTurns(d.turns, saved)) dropDraft(task.pk, d.version);
  const left = older.find((d) => !T.sameTurns(d.turns, saved));
  if (!left || !task.editable) return;
  const box = $("notice");
  box.innerHTML = `This browser holds unsaved edits made on version ${left.version} (the task is now at version ${base}).
    <button id="d-restore">Restore my unsaved edits</button> <button id="d-discard">Discard them</button>`;
  $("d-restore").onclick = () => { dropDraft(task!.pk, left.version); box.innerHTML = ""; edit(T.withIds(left.turns)); };
  $("d-discard").onclick = () => { dropDraft(task!.pk, left.version); box.innerHTML = ""; };
}

function renderKeys(): void {
  const names: Record<string, string> = {
    play_pause: "play / pause", replay_turn: "play the turn from its start", skip_back: "back 2 s", loop: "loop the turn on/off",
    accept_next: "accept the turn and go to the next", next_turn: "next turn", prev_turn: "previous turn",
    split: "split at the text cursor", merge_prev: "merge with the previous turn", undo: "undo", redo: "redo", save: "save now",
    nudge_start_earlier: "start 0.1 s earlier", nudge_start_later: "start 0.1 s later", nudge_end_earlier: "end 0.1 s earlier",
    nudge_end_later: "end 0.1 s later", mark_pii: "mark the selected words as personal data",
    unmark_pii: "unmark personal data in the selected words" };
  const lines = Object.entries(keymap).filter(([a]) => !a.startsWith("speaker_"))
    .map(([a, combos]) => `${combos.map((c) => `<kbd>${escape(c)}</kbd>`).join(" ")} ${names[a] || a}`);
  lines.push(`<kbd>Alt+1</kbd>…<kbd>Alt+9</kbd> speaker by number`);
  $("keys").innerHTML = lines.join(" · ") + "<br>Plain keys (space, j, k, r) act only when no text field has the focus.";
}

function renderAll(): void {
  document.querySelectorAll<HTMLElement>(".edit").forEach((el) => (el.style.display = task && task.editable ? "" : "none"));
  if (task && task.reviewing) $("submit").style.display = "none";  // a reviewer accepts or sends back below
  $<HTMLSelectElement>("pii-kind").innerHTML = ((task && task.pii_kinds) || ["other"]).map((k) => `<option>${escape(k)}</option>`).join("");
  renderTurns();
  renderNotice();
  drawWave();
  setStatus();
}

// ---------------------------------------------------------------- keys and controls

function caretOffset(): number | null {
  const el = document.activeElement as HTMLTextAreaElement | null;
  return el && el.tagName === "TEXTAREA" ? el.selectionStart : null;
}

function nudge(edge: "start" | "end", delta: number): void {
  tryEdit(() => T.moveEdge(turns, selected, edge, turns[selected][edge] + delta, task!.duration));
}

const actions: Record<string, () => void> = {
  play_pause: togglePlay,
  replay_turn: () => turns[selected] && playFrom(turns[selected].start),
  skip_back: () => wave.window && playFrom(Math.max(wave.window.start, wave.window.start + audio.currentTime - 2)),
  loop: () => { const box = $<HTMLInputElement>("loop"); box.checked = !box.checked; },
  accept_next: () => { requestSave("save"); select(selected + 1, true); },
  next_turn: () => move(1),
  prev_turn: () => move(-1),
  split: () => {
    // the "Split at cursor" button takes the focus from the text: its field still holds the cursor
    const field = lastArea && rowAt(selected)?.contains(lastArea) ? lastArea : null;
    const at = caretOffset() ?? field?.selectionStart ?? Math.floor(turns[selected].text.length / 2);
    tryEdit(() => T.splitAt(turns, selected, at), selected + 1, 0);
  },
  merge_prev: () => {
    const i = selected;
    const join = i > 0 ? turns[i - 1].text.trim().length + 1 : 0;
    // the merged turn keeps the earlier turn's id, but the later turn's row (it holds the focus) shows it: moving
    // the focus to the earlier row's field would lay out the document again
    const make = () => {
      const merged = T.mergeWithPrevious(turns, i);
      rows.adopt(turns[i].id!, turns[i - 1].id!);
      return merged;
    };
    tryEdit(make, i - 1, join);
  },
  undo, redo,
  save: () => requestSave("save"),
  nudge_start_earlier: () => nudge("start", -NUDGE_S),
  nudge_start_later: () => nudge("start", NUDGE_S),
  nudge_end_earlier: () => nudge("end", -NUDGE_S),
  nudge_end_later: () => nudge("end", NUDGE_S),
  mark_pii: () => markPii("mark"),
  unmark_pii: () => markPii("unmark"),
};
for (let n = 1; n <= 9; n++) {
  actions[`speaker_${n}`] = () => {
    const name = speakers()[n - 1];
    if (name) tryEdit(() => T.setSpeaker(turns, selected, name));
  };
}

document.addEventListener("keydown", (e) => {
  const target = e.target as HTMLElement;
  const typing = ["TEXTAREA", "INPUT", "SELECT"].includes(target.tagName);
  const action = actionFor(keymap, e, typing);
  if (!action || !actions[action]) return;
  const editing = !["play_pause", "replay_turn", "skip_back", "loop", "next_turn", "prev_turn"].includes(action);
  if (editing && (!task || !task.editable)) return;
  e.preventDefault();
  e.stopPropagation();
  actions[action]();
});

$("turns").addEventListener("input", (e) => {
  const area = e.target as HTMLTextAreaElement;
  if (area.tagName !== "TEXTAREA") return;
  const i = Number(area.closest<HTMLElement>(".turn")!.dataset.i);
  edit(T.withText(turns, i, area.value), i, i);
});
$("turns").addEventListener("change", (e) => {
  const box = e.target as HTMLSelectElement;
  if (box.tagName !== "SELECT") return;
  const i = Number(box.closest<HTMLElement>(".turn")!.dataset.i);
  selected = i;
  tryEdit(() => T.setSpeaker(turns, i, box.value), i);
});
$("turns").addEventListener("focusin", (e) => {
  if ((e.target as HTMLElement).tagName === "TEXTAREA") lastArea = e.target as HTMLTextAreaElement;
  const row = (e.target as HTMLElement).closest<HTMLElement>(".turn");
  if (row && Number(row.dataset.i) !== selected) select(Number(row.dataset.i), false);
});
$("turns").addEventListener("click", (e) => {
  const unmark = (e.target as HTMLElement).closest<HTMLElement>("button.unmark");
  if (unmark && task && task.editable) {
    pendingPii = { action: "unmark", turn: Number(unmark.dataset.turn), word_start: Number(unmark.dataset.ws),
      word_end: Number(unmark.dataset.we), kind: "" };
    pump();
    return;
  }
  const word = (e.target as HTMLElement).closest<HTMLElement>(".words span");
  if (!word) return;
  const i = Number(word.closest<HTMLElement>(".turn")!.dataset.i);
  select(i, false);
  playFrom(turns[i].words[Number(word.dataset.w)].start);
});

const click = (id: string, run: () => void) => $(id).addEventListener("click", run);
click("play", togglePlay);
click("back", actions.skip_back);
click("save", () => requestSave("save"));
click("submit", () => requestSave("submit"));
click("undo", undo);
click("redo", redo);
click("split", actions.split);
click("merge", actions.merge_prev);
click("add", () => tryEdit(() => T.addTurnAfter(turns, selected, task!.duration), selected + 1));
click("delete", () => tryEdit(() => T.deleteTurn(turns, selected), selected));
click("start-earlier", actions.nudge_start_earlier);
click("start-later", actions.nudge_start_later);
click("end-earlier", actions.nudge_end_earlier);
click("end-later", actions.nudge_end_later);
click("prev", actions.prev_turn);
click("next", actions.next_turn);
click("earlier", () => { const w = currentWindow(); askWindow(windowAround(w.start - (w.end - w.start) * 0.8 + 2)); });
click("later", () => { const w = currentWindow(); askWindow(windowAround(w.start + (w.end - w.start) * 0.8 + 2)); });
click("replace-all", () => {
  const [next, count] = T.replaceAll(turns, $<HTMLInputElement>("find").value, $<HTMLInputElement>("replace").value);
  if (count) edit(next);
  statusError = "";
  $("status").textContent = `Replaced ${count}`;
});
click("pii-mark", actions.mark_pii);
click("pii-unmark", actions.unmark_pii);
click("spectro", () => {
  const canvas = $<HTMLCanvasElement>("spectrogram");
  canvas.hidden = !canvas.hidden;
  $("spectro").setAttribute("aria-pressed", String(!canvas.hidden));
  drawSpectrogramIfShown();
});
click("rename", () => tryEdit(() => T.renameSpeaker(turns, $<HTMLSelectElement>("rename-from").value, $<HTMLInputElement>("rename-to").value)));
$("speed").addEventListener("change", () => {
  audio.playbackRate = audio.defaultPlaybackRate = Number($<HTMLSelectElement>("speed").value);
});
$("zoom").addEventListener("change", () => turns[selected] && askWindow(windowAround(turns[selected].start)));

// Leaving with unsaved edits asks first; a hidden tab saves at once (the draft is in localStorage either way).
try {
  window.parent.addEventListener("beforeunload", (e) => {
    keepLocally(true);
    if (!reloading && task && task.editable && (dirty() || inflight)) { e.preventDefault(); e.returnValue = ""; }
  });
  window.parent.document.addEventListener("visibilitychange", () => {
    if (window.parent.document.visibilityState === "hidden") { keepLocally(true); if (dirty()) requestSave("save"); }
  });
  window.parent.addEventListener("pagehide", () => keepLocally(true));
  window.addEventListener("blur", () => { if (dirty()) requestSave("save"); });  // e.g. a click on Accept outside the editor
} catch { /* another origin */ }

// Streamlit's own "Connection error" dialog takes the focus when the server goes away, and what the person
// types next would go into it. The status line here already says the server is not answering and the draft
// is kept, so the dialog is closed and the focus given back to the turn field they were typing in.
window.addEventListener("blur", () => {
  const area = lastArea;  // the frame's own focus is already gone (to its body) when the window blurs
  if (!area || !area.isConnected) return;
  const caret = [area.selectionStart, area.selectionEnd];
  const giveBack = (tries: number) => {
    try {
      const dialog = (window.parent.document.activeElement as HTMLElement | null)?.closest<HTMLElement>('[role="dialog"]');
      if (dialog && /connection error/i.test(dialog.textContent || "")) {
        dialog.querySelector<HTMLButtonElement>('button[aria-label="Close"]')?.click();
        area.focus({ preventScroll: true });
        area.setSelectionRange(caret[0], caret[1]);
      } else if (tries > 0) window.setTimeout(() => giveBack(tries - 1), 25);
    } catch { /* another origin */ }
  };
  window.setTimeout(() => giveBack(8), 0);
});

// ---------------------------------------------------------------- what the server sends

onRender((args) => {
  const info = args.task as TaskInfo;
  const doc = args.doc as { version: number; turns: Turn[] | null; turn_ids: string[] | null; pii: PiiSpan[] | null };
  keymap = (args.keymap as KeyMap) || keymap;
  if ((!task || task.pk !== info.pk) && !doc.turns) {  // a new tab where the server thought one was open: ask for the turns
    if (!inflight) {
      inflight = { mount, seq: ++seq, attempt: 0, op: "window", base_version: -1, turns: null, turn_ids: null, pii: null,
        pending: null, window: null, turn: 1, have: "", doc_version: -1 };
      inflightAt = Date.now();
      setComponentValue(inflight);
    }
    return;
  }
  if (!task || task.pk !== info.pk) {
    task = { ...info };
    turns = T.withIds(T.clone(doc.turns!), doc.turn_ids);
    saved = T.clone(doc.turns!);
    takePii(doc.pii || [], saved);
    base = doc.version;
    const exact = draftsOf(task.pk).find((d) => d.version === base);
    if (exact && task.editable && !T.sameTurns(exact.turns, saved)) {
      turns = T.withIds(exact.turns);  // typing from before a reload, a crash or a closed tab
      scheduleSave(0);
    }
    const wanted = Number(args.initial_turn || 1) - 1;
    selected = Math.max(0, Math.min(wanted, turns.length - 1));
    renderKeys();
    takeAudio(args.window as AudioWindow | null, args.audio);  // before selecting: the window already holds the turn
    renderAll();
    showOlderDraft();
    select(selected, task.editable);
  } else if (!task.editable && info.editable === false) {
    task.editable = false;
  } else if (doc.turns && !dirty() && !inflight && !conflict && doc.version > base) {
    base = doc.version;  // saved elsewhere while nothing here was unsaved: show the newest
    turns = T.withIds(T.clone(doc.turns), doc.turn_ids);
    saved = T.clone(doc.turns);
    pii = [];
    takePii(doc.pii || [], saved);
    renderTurns();
  }
  takeAudio(args.window as AudioWindow | null, args.audio);
  if (args.ack) onAck(args.ack as Ack);
  setStatus();
  setFrameHeight(document.body.scrollHeight + 4);
});

new ResizeObserver(() => { setFrameHeight(document.body.scrollHeight + 4); drawWave(); }).observe(document.body);
window.requestAnimationFrame(tick);
