// The waveform of the audio window in view (server-computed min/max peaks), one lane per speaker with
// the turns as regions whose edges can be dragged, and the playhead. Click to seek.

import { Turn } from "./turns";

export interface AudioWindow { start: number; end: number; peaks: number[]; per_second: number }

export interface WaveCallbacks {
  seek(time: number): void;
  select(index: number): void;
  moveEdge(index: number, edge: "start" | "end", time: number): void;
}

export const PALETTE = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#17becf", "#8c564b", "#e377c2", "#7f7f7f"];
export const WAVE_H = 90, LANE_H = 18;
const AXIS_H = 14, EDGE_PX = 6;

export class Waveform {
  window: AudioWindow | null = null;
  turns: Turn[] = [];
  speakers: string[] = [];
  selected = 0;
  playhead = -1;
  private drag: { index: number; edge: "start" | "end"; time: number } | null = null;
  // The peaks and the time axis depend only on the window and the canvas size: drawn once into this layer, then
  // copied under each redraw (an edit, a selection or the playhead redraws only the regions over them).
  private layer: { key: string; canvas: HTMLCanvasElement } | null = null;

  constructor(readonly canvas: HTMLCanvasElement, readonly on: WaveCallbacks) {
    canvas.height = this.height();
    canvas.addEventListener("mousedown", (e) => this.down(e));
    window.addEventListener("mousemove", (e) => this.move(e));
    window.addEventListener("mouseup", () => this.up());
  }

  height(): number { return WAVE_H + LANE_H * Math.max(1, this.speakers.length) + AXIS_H; }

  private x(t: number): number {
    const w = this.window!;
    return ((t - w.start) / Math.max(w.end - w.start, 1e-6)) * this.canvas.width;
  }

  private time(px: number): number {
    const w = this.window!;
    return w.start + (px / this.canvas.width) * (w.end - w.start);
  }

  private edgeAt(px: number, py: number): { index: number; edge: "start" | "end" } | null {
    if (py < WAVE_H) return null;
    const lane = Math.floor((py - WAVE_H) / LANE_H);
    for (let i = 0; i < this.turns.length; i++) {
      const t = this.turns[i];
      if (this.speakers.indexOf(t.speaker) !== lane) continue;
      if (Math.abs(this.x(t.start) - px) <= EDGE_PX) return { index: i, edge: "start" };
      if (Math.abs(this.x(t.end) - px) <= EDGE_PX) return { index: i, edge: "end" };
    }
    return null;
  }

  private point(e: MouseEvent): [number, number] {
    const box = this.canvas.getBoundingClientRect();
    return [((e.clientX - box.left) / box.width) * this.canvas.width, e.clientY - box.top];
  }

  private down(e: MouseEvent): void {
    if (!this.window) return;
    const [px, py] = this.point(e);
    const edge = this.edgeAt(px, py);
    if (edge) {
      this.drag = { ...edge, time: this.turns[edge.index][edge.edge] };
      e.preventDefault();
      return;
    }
    const t = this.time(px);
    if (py >= WAVE_H) {
      const hit = this.turns.findIndex((turn) => turn.start <= t && t <= turn.end &&
        this.speakers.indexOf(turn.speaker) === Math.floor((py - WAVE_H) / LANE_H));
      if (hit >= 0) { this.on.select(hit); return; }
    }
    this.on.seek(t);
  }

  private move(e: MouseEvent): void {
    if (!this.window) return;
    const [px, py] = this.point(e);
    if (this.drag) {
      this.drag.time = Math.min(Math.max(this.time(px), this.window.start), this.window.end);
      this.draw();
      return;
    }
    this.canvas.style.cursor = this.edgeAt(px, py) ? "ew-resize" : "pointer";
  }

  private up(): void {
    if (!this.drag) return;
    const { index, edge, time } = this.drag;
    this.drag = null;
    this.on.moveEdge(index, edge, time);
  }

  /** The window's peaks and time axis on a transparent canvas of this canvas's size (made again only when the
   * window or the size changed). */
  private staticLayer(w: AudioWindow): HTMLCanvasElement {
    const c = this.canvas;
    const key = `${w.start}:${w.end}:${w.peaks.length}:${c.width}x${c.height}`;
    if (this.layer && this.layer.key === key) return this.layer.canvas;
    const layer = this.layer?.canvas || document.createElement("canvas");
    layer.width = c.width;
    layer.height = c.height;
    const g = layer.getContext("2d")!;
    g.clearRect(0, 0, layer.width, layer.height);
    const n = w.peaks.length / 2, mid = WAVE_H / 2, amp = WAVE_H / 2 - 2;
    g.fillStyle = "#444";
    for (let i = 0; i < n; i++) {
      const x = this.x(w.start + i / w.per_second);
      const lo = w.peaks[2 * i] / 127, hi = w.peaks[2 * i + 1] / 127;
      g.fillRect(x, mid - hi * amp, Math.max(1, c.width / n), Math.max(1, (hi - lo) * amp));
    }
    g.font = "11px sans-serif";
    const span = w.end - w.start;
    const step = [0.5, 1, 2, 5, 10, 15, 30, 60, 120].find((s) => span / s <= 12) || 300;
    g.fillStyle = "#666";
    for (let t = Math.ceil(w.start / step) * step; t < w.end; t += step) {
      g.fillRect(this.x(t), c.height - AXIS_H, 1, 4);
      g.fillText(`${+t.toFixed(1)}s`, this.x(t) + 2, c.height - 2);
    }
    this.layer = { key, canvas: layer };
    return layer;
  }

  draw(): void {
    const c = this.canvas, g = c.getContext("2d")!;
    const width = c.clientWidth || 1000;
    if (c.width !== width) c.width = width;
    if (c.height !== this.height()) c.height = this.height();
    g.clearRect(0, 0, c.width, c.height);
    g.fillStyle = "#fafafa";
    g.fillRect(0, 0, c.width, c.height);
    const w = this.window;
    if (!w) return;
    c.dataset.start = String(w.start);  // the window in view, for people's tools and tests
    c.dataset.end = String(w.end);
    this.turns.forEach((t, i) => {
      if (t.end <= w.start || t.start >= w.end) return;
      let start = t.start, end = t.end;
      if (this.drag && this.drag.index === i) this.drag.edge === "start" ? (start = this.drag.time) : (end = this.drag.time);
      const lane = Math.max(0, this.speakers.indexOf(t.speaker));
      const colour = PALETTE[lane % PALETTE.length];
      const x0 = this.x(start), x1 = this.x(end);
      g.globalAlpha = i === this.selected ? 0.25 : 0.1;
      g.fillStyle = colour;
      g.fillRect(x0, 0, Math.max(1, x1 - x0), WAVE_H);
      g.globalAlpha = 1;
      g.fillRect(x0, WAVE_H + lane * LANE_H + 2, Math.max(1, x1 - x0), LANE_H - 4);
      if (i === this.selected) {
        g.strokeStyle = "#000";
        g.lineWidth = 2;
        g.strokeRect(x0, WAVE_H + lane * LANE_H + 1, Math.max(1, x1 - x0), LANE_H - 2);
      }
    });
    g.drawImage(this.staticLayer(w), 0, 0);
    g.font = "11px sans-serif";
    this.speakers.forEach((s, lane) => {
      g.fillStyle = "#222";
      g.fillText(`${lane + 1} ${s}`, 3, WAVE_H + lane * LANE_H + 13);
    });
    if (this.playhead >= w.start && this.playhead <= w.end) {
      g.fillStyle = "#e00";
      g.fillRect(this.x(this.playhead) - 1, 0, 2, c.height - AXIS_H);
    }
  }
}
