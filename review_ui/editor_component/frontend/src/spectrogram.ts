// A spectrogram of the audio window in view, computed here from the window's own samples (the WAV the
// server sent for playback; never more than the window): short-time Fourier transform with a Hann
// window, power in dB, one column per canvas pixel, 0 Hz at the bottom.

export const FFT_SIZE = 512;
export const RANGE_DB = 80;  // the window's loudest bin is the brightest colour, this much below it the darkest

/** Mono samples in -1..1 and the rate of a 16-bit PCM WAV (the working-copy format). */
export function parseWav(bytes: Uint8Array): { samples: Float32Array; rate: number } {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let at = 12, rate = 16000, channels = 1, bits = 16;
  while (at + 8 <= view.byteLength) {
    const id = String.fromCharCode(...bytes.subarray(at, at + 4));
    const size = view.getUint32(at + 4, true);
    if (id === "fmt ") {
      channels = view.getUint16(at + 10, true);
      rate = view.getUint32(at + 12, true);
      bits = view.getUint16(at + 22, true);
    } else if (id === "data") {
      if (bits !== 16) throw new Error(`a ${bits}-bit WAV; the spectrogram reads 16-bit PCM`);
      const frames = Math.floor(Math.min(size, view.byteLength - at - 8) / (2 * channels));
      const samples = new Float32Array(frames);
      for (let i = 0; i < frames; i++) samples[i] = view.getInt16(at + 8 + 2 * i * channels, true) / 32768;
      return { samples, rate };
    }
    at += 8 + size + (size % 2);
  }
  return { samples: new Float32Array(0), rate };
}

/** In-place radix-2 FFT of (re, im), length a power of two. */
function fft(re: Float64Array, im: Float64Array): void {
  const n = re.length;
  for (let i = 1, j = 0; i < n; i++) {
    let bit = n >> 1;
    for (; j & bit; bit >>= 1) j ^= bit;
    j ^= bit;
    if (i < j) { [re[i], re[j]] = [re[j], re[i]]; [im[i], im[j]] = [im[j], im[i]]; }
  }
  for (let len = 2; len <= n; len <<= 1) {
    const ang = (-2 * Math.PI) / len, wr = Math.cos(ang), wi = Math.sin(ang);
    for (let i = 0; i < n; i += len) {
      let cr = 1, ci = 0;
      for (let k = 0; k < len / 2; k++) {
        const a = i + k, b = a + len / 2;
        const tr = re[b] * cr - im[b] * ci, ti = re[b] * ci + im[b] * cr;
        re[b] = re[a] - tr; im[b] = im[a] - ti;
        re[a] += tr; im[a] += ti;
        [cr, ci] = [cr * wr - ci * wi, cr * wi + ci * wr];
      }
    }
  }
}

/** Power in dB (FFT_SIZE/2 bins, 0 Hz first) of `columns` frames centred evenly across the samples. */
export function spectrogram(samples: Float32Array, columns: number): Float32Array[] {
  const bins = FFT_SIZE / 2;
  const hann = new Float64Array(FFT_SIZE).map((_, i) => 0.5 - 0.5 * Math.cos((2 * Math.PI * i) / (FFT_SIZE - 1)));
  const norm = hann.reduce((a, b) => a + b, 0) / 2;  // a full-scale sine peaks at 0 dB
  const out: Float32Array[] = [];
  const re = new Float64Array(FFT_SIZE), im = new Float64Array(FFT_SIZE);
  for (let c = 0; c < columns; c++) {
    const centre = Math.floor(((c + 0.5) / columns) * samples.length);
    re.fill(0); im.fill(0);
    for (let i = 0; i < FFT_SIZE; i++) {
      const k = centre - FFT_SIZE / 2 + i;
      if (k >= 0 && k < samples.length) re[i] = samples[k] * hann[i];
    }
    fft(re, im);
    const column = new Float32Array(bins);
    for (let b = 0; b < bins; b++) column[b] = 10 * Math.log10((re[b] * re[b] + im[b] * im[b]) / (norm * norm) + 1e-12);
    out.push(column);
  }
  return out;
}

/** Draw the window's spectrogram into the canvas (dark is quiet, levels relative to the window's loudest), one column per pixel. */
export function drawSpectrogram(canvas: HTMLCanvasElement, wav: Uint8Array, start: number, end: number): void {
  const width = canvas.clientWidth || 1000, height = canvas.height;
  if (canvas.width !== width) canvas.width = width;
  const { samples, rate } = parseWav(wav);
  const columns = spectrogram(samples, width);
  const g = canvas.getContext("2d")!;
  const image = g.createImageData(width, height);
  const bins = FFT_SIZE / 2;
  const top = columns.reduce((m, c) => Math.max(m, c.reduce((a, b) => Math.max(a, b), -Infinity)), -Infinity);
  for (let x = 0; x < columns.length; x++) {
    for (let y = 0; y < height; y++) {
      const bin = Math.min(bins - 1, Math.floor(((height - 1 - y) / height) * bins));
      const level = Math.max(0, Math.min(1, 1 - (top - columns[x][bin]) / RANGE_DB));
      const v = Math.round(255 * level), p = 4 * (y * width + x);
      image.data[p] = v; image.data[p + 1] = v; image.data[p + 2] = Math.min(255, v + 40); image.data[p + 3] = 255;
    }
  }
  g.putImageData(image, 0, 0);
  canvas.dataset.start = String(start);  // the window drawn, for people's tools and tests
  canvas.dataset.end = String(end);
  canvas.dataset.rate = String(rate);
  canvas.dataset.fft = String(FFT_SIZE);
}
