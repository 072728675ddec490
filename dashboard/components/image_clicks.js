// Image with overlay marks that reports clicks in IMAGE pixels (Streamlit custom component v2).
// Ships with the app: no network access, no library. Python sends {src, width, height, marks,
// polygon, closed, max_width, alt}; a click sends the trigger "click" = {x, y, seq} where x, y are
// pixels of the full-size image (display scaling and the reduced preview are undone here).

const SVG_NS = "http://www.w3.org/2000/svg";

function svgElement(name, attributes) {
  const element = document.createElementNS(SVG_NS, name);
  for (const [key, value] of Object.entries(attributes)) {
    element.setAttribute(key, String(value));
  }
  return element;
}

function drawOverlay(svg, data) {
  while (svg.firstChild) svg.removeChild(svg.firstChild);
  svg.setAttribute("viewBox", `0 0 ${data.width} ${data.height}`);
  const polygon = data.polygon || [];
  if (polygon.length) {
    const points = polygon.map(([x, y]) => `${x},${y}`).join(" ");
    const shape = polygon.length >= 3 && data.closed !== false ? "polygon" : "polyline";
    svg.appendChild(svgElement(shape, { points, class: "ic-roi" }));
  }
  const fontSize = Math.max(8, Math.round(Math.max(data.width, data.height) / 45));
  for (const mark of data.marks || []) {
    const kind = mark.kind || "auto";
    const r = mark.r || 6;
    const group = svgElement("g", { class: `ic-mark ic-${kind}` });
    if (mark.color) group.style.setProperty("--ic-colour", mark.color);
    if (kind === "remove") {
      group.appendChild(svgElement("line", { x1: mark.x - r, y1: mark.y - r, x2: mark.x + r, y2: mark.y + r }));
      group.appendChild(svgElement("line", { x1: mark.x - r, y1: mark.y + r, x2: mark.x + r, y2: mark.y - r }));
    } else {
      group.appendChild(svgElement("circle", { cx: mark.x, cy: mark.y, r }));
    }
    if (mark.label !== undefined && mark.label !== null && mark.label !== "") {
      const text = svgElement("text", { x: mark.x + r + 2, y: mark.y - r - 2, "font-size": fontSize });
      text.textContent = String(mark.label);
      group.appendChild(text);
    }
    svg.appendChild(group);
  }
}

export default function (component) {
  const { data, parentElement, setTriggerValue } = component;
  let root = parentElement.querySelector(".ic-root");
  if (!root) {
    root = document.createElement("div");
    root.className = "ic-root";
    const frame = document.createElement("div");
    frame.className = "ic-frame";
    frame.tabIndex = 0;
    const img = document.createElement("img");
    img.className = "ic-image";
    img.draggable = false;
    const svg = svgElement("svg", { class: "ic-overlay", preserveAspectRatio: "none" });
    const status = document.createElement("div");
    status.className = "ic-status";
    status.setAttribute("aria-live", "polite");
    frame.append(img, svg);
    root.append(frame, status);
    parentElement.appendChild(root);
    root.icState = { seq: 0 };
    frame.addEventListener("click", (event) => {
      const state = root.icState;
      if (!state.data) return;
      const rect = frame.getBoundingClientRect();
      if (rect.width <= 0 || rect.height <= 0) return;
      const x = ((event.clientX - rect.left) * state.data.width) / rect.width;
      const y = ((event.clientY - rect.top) * state.data.height) / rect.height;
      if (x < 0 || y < 0 || x >= state.data.width || y >= state.data.height) return;
      state.seq += 1;
      const click = { x: Math.round(x * 100) / 100, y: Math.round(y * 100) / 100, seq: state.seq };
      status.textContent = `clicked at x ${Math.round(click.x)}, y ${Math.round(click.y)}`;
      state.send("click", click);
    });
  }
  const state = root.icState;
  state.data = data;
  state.send = setTriggerValue;
  const frame = root.querySelector(".ic-frame");
  const img = root.querySelector(".ic-image");
  const svg = root.querySelector(".ic-overlay");
  if (!data || !data.src) {
    frame.hidden = true;
    return () => {};
  }
  frame.hidden = false;
  frame.style.maxWidth = `${data.max_width}px`;
  frame.style.aspectRatio = `${data.width} / ${data.height}`;
  frame.setAttribute("aria-label", data.alt || "photo: click to mark");
  if (img.getAttribute("src") !== data.src) img.setAttribute("src", data.src);
  img.alt = data.alt || "photo";
  drawOverlay(svg, data);
  return () => {};
}
