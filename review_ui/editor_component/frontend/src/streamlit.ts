// The custom-component protocol Streamlit speaks with its iframe (what streamlit-component-lib
// wraps), written out so the editor has no runtime dependency at all.

export type RenderHandler = (args: Record<string, unknown>) => void;

function send(type: string, data: Record<string, unknown>): void {
  window.parent.postMessage({ isStreamlitMessage: true, type, ...data }, "*");
}

export function onRender(handler: RenderHandler): void {
  window.addEventListener("message", (event: MessageEvent) => {
    if (event.data && event.data.type === "streamlit:render") handler(event.data.args || {});
  });
  send("streamlit:componentReady", { apiVersion: 1 });
}

export function setComponentValue(value: unknown): void {
  send("streamlit:setComponentValue", { value, dataType: "json" });
}

export function setFrameHeight(height: number): void {
  send("streamlit:setFrameHeight", { height });
}
