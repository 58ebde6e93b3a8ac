// Key combinations as written in the key map ("Ctrl+Enter", "Alt+1", "Space"), matched on the
// physical key (KeyboardEvent.code) so they hold on any layout.

export type KeyMap = Record<string, string[]>;

export function comboOf(e: KeyboardEvent): string {
  let key = e.code;
  if (key.startsWith("Key")) key = key.slice(3);
  else if (key.startsWith("Digit")) key = key.slice(5);
  else if (key === "NumpadEnter") key = "Enter";
  const mods = [e.ctrlKey || e.metaKey ? "Ctrl" : "", e.altKey ? "Alt" : "", e.shiftKey ? "Shift" : ""].filter(Boolean);
  return [...mods, key].join("+");
}

/** The action a key press asks for; a plain key (no Ctrl/Alt) belongs to the text while a field has focus. */
export function actionFor(map: KeyMap, e: KeyboardEvent, typing: boolean): string | null {
  const combo = comboOf(e);
  const plain = !(e.ctrlKey || e.metaKey || e.altKey);
  if (typing && plain) return null;
  for (const [action, combos] of Object.entries(map)) {
    if (combos.includes(combo)) return action;
  }
  return null;
}
