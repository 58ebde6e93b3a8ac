// The unsaved draft kept in this browser (localStorage), keyed by task and the version it is based on,
// so a reload, a crash or a lost connection never loses typing.

import { Turn } from "./turns";

const PREFIX = "turnscribe:draft:";

export interface Draft { task: number; version: number; turns: Turn[]; at: number }

const keyOf = (task: number, version: number): string => `${PREFIX}${task}:${version}`;

// Each turn's JSON, kept while the turn object lives: edits replace a turn, never change it, so a one-hour task's
// draft (~1,500 turns, about a megabyte) is written by serialising only the turns edited since the last write.
const turnJson = new WeakMap<Turn, string>();

function jsonOf(turn: Turn): string {
  let json = turnJson.get(turn);
  if (json === undefined) { json = JSON.stringify(turn); turnJson.set(turn, json); }
  return json;
}

export function keepDraft(task: number, version: number, turns: Turn[]): void {
  try {
    // the same text as JSON.stringify({ task, version, turns, at }) (task and version are integers)
    const json = `{"task":${JSON.stringify(task)},"version":${JSON.stringify(version)},"turns":[${turns.map(jsonOf).join(",")}],"at":${Date.now()}}`;
    localStorage.setItem(keyOf(task, version), json);
  } catch {
    /* storage full or disabled: the server copy is still saved */
  }
}

export function dropDraft(task: number, version: number): void {
  try { localStorage.removeItem(keyOf(task, version)); } catch { /* nothing kept */ }
}

/** Every draft kept for a task, newest version first. */
export function draftsOf(task: number): Draft[] {
  const out: Draft[] = [];
  try {
    for (let i = 0; i < localStorage.length; i++) {
      const key = localStorage.key(i);
      if (!key || !key.startsWith(`${PREFIX}${task}:`)) continue;
      const draft = JSON.parse(localStorage.getItem(key) || "null") as Draft | null;
      if (draft && Array.isArray(draft.turns)) out.push(draft);
    }
  } catch { /* unreadable storage: nothing to restore */ }
  return out.sort((a, b) => b.version - a.version);
}
