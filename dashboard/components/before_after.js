// Before/after slider (Streamlit custom component v2). BEFORE fills the stage; AFTER lies on top of it,
// clipped to the part right of the split. Mouse/touch drag, a click and the keyboard move the split; the
// new position goes back to Python (setStateValue "position", a fraction 0..1) when a drag ends or the
// keys rest, so Python can export the same wipe. No network: the images arrive as data: URLs.
//
// Streamlit calls this function again whenever the data changes (every rerun); the DOM and listeners
// are set up once per root element and later calls only update images, labels and, when Python sends a
// new position, the split.

const INSTANCES = new WeakMap();
const KEY_STEP = 1; // percent per arrow key
const BIG_STEP = 10; // with Shift, Page Up/Down
const REPORT_DELAY_MS = 350;

function clampPercent(value) {
  return Math.min(100, Math.max(0, value));
}

function setup(root) {
  const stage = root.querySelector(".ba-stage");
  const instance = {
    root,
    stage,
    beforeImg: root.querySelector(".ba-before"),
    afterImg: root.querySelector(".ba-after"),
    afterClip: root.querySelector(".ba-after-clip"),
    handle: root.querySelector(".ba-handle"),
    tagBefore: root.querySelector(".ba-tag-before"),
    tagAfter: root.querySelector(".ba-tag-after"),
    percent: 50,
    reported: null,
    lastDataPosition: null,
    dragging: false,
    timer: null,
    setStateValue: null,
    labels: ["Before", "After"],
  };

  const fromClientX = (clientX) => {
    const box = stage.getBoundingClientRect();
    if (box.width <= 0) return;
    apply(instance, ((clientX - box.left) / box.width) * 100);
  };

  stage.addEventListener("pointerdown", (event) => {
    if (event.button !== undefined && event.button !== 0) return;
    instance.dragging = true;
    try {
      stage.setPointerCapture(event.pointerId);
    } catch (_) {
      // pointer capture is a convenience; dragging still works inside the stage
    }
    fromClientX(event.clientX);
    instance.handle.focus({ preventScroll: true });
    event.preventDefault();
  });
  stage.addEventListener("pointermove", (event) => {
    if (instance.dragging) fromClientX(event.clientX);
  });
  const endDrag = () => {
    if (!instance.dragging) return;
    instance.dragging = false;
    report(instance);
  };
  stage.addEventListener("pointerup", endDrag);
  stage.addEventListener("pointercancel", endDrag);
  stage.addEventListener("lostpointercapture", endDrag);

  instance.handle.addEventListener("keydown", (event) => {
    let next = null;
    const step = event.shiftKey ? BIG_STEP : KEY_STEP;
    switch (event.key) {
      case "ArrowLeft":
      case "ArrowDown":
        next = instance.percent - step;
        break;
      case "ArrowRight":
      case "ArrowUp":
        next = instance.percent + step;
        break;
      case "PageDown":
        next = instance.percent - BIG_STEP;
        break;
      case "PageUp":
        next = instance.percent + BIG_STEP;
        break;
      case "Home":
        next = 0;
        break;
      case "End":
        next = 100;
        break;
      default:
        return;
    }
    event.preventDefault();
    apply(instance, next);
    clearTimeout(instance.timer);
    instance.timer = setTimeout(() => report(instance), REPORT_DELAY_MS);
  });
  return instance;
}

function apply(instance, percent) {
  const value = Math.round(clampPercent(percent) * 100) / 100;
  instance.percent = value;
  instance.afterClip.style.clipPath = `inset(0 0 0 ${value}%)`;
  instance.handle.style.left = `${value}%`;
  instance.root.dataset.position = String(value);
  const shown = Math.round(value);
  instance.handle.setAttribute("aria-valuenow", String(shown));
  instance.handle.setAttribute(
    "aria-valuetext",
    `${shown} %: ${instance.labels[0]} on the left, ${instance.labels[1]} on the right`
  );
}

function report(instance) {
  clearTimeout(instance.timer);
  const fraction = Math.round(instance.percent * 100) / 10000;
  if (instance.reported !== null && Math.abs(instance.reported - fraction) < 1e-6) return;
  instance.reported = fraction;
  if (instance.setStateValue) instance.setStateValue("position", fraction);
}

function update(instance, data) {
  const labels = Array.isArray(data.labels) && data.labels.length === 2 ? data.labels : ["Before", "After"];
  instance.labels = labels.map(String);
  if (instance.beforeImg.getAttribute("src") !== data.before) instance.beforeImg.setAttribute("src", data.before);
  if (instance.afterImg.getAttribute("src") !== data.after) instance.afterImg.setAttribute("src", data.after);
  instance.beforeImg.alt = `Before: ${instance.labels[0]}`;
  instance.afterImg.alt = `After: ${instance.labels[1]}`;
  instance.tagBefore.textContent = instance.labels[0];
  instance.tagAfter.textContent = instance.labels[1];
  if (data.width > 0 && data.height > 0) {
    instance.stage.style.aspectRatio = `${data.width} / ${data.height}`;
  }
  const fresh = typeof data.position === "number" && data.position !== instance.lastDataPosition;
  if (fresh) instance.lastDataPosition = data.position;
  const echo = instance.reported !== null && Math.abs(data.position - instance.reported) < 1e-6;
  if (fresh && !echo) {
    // Python sent a new position: follow it. An echo of what this slider reported is ignored, so a
    // rerun never pulls the split back while the user is still moving it.
    instance.reported = data.position;
    apply(instance, data.position * 100);
  } else {
    apply(instance, instance.percent);
  }
}

export default function (component) {
  const { data, parentElement, setStateValue } = component;
  const root = parentElement.querySelector(".ba-root");
  if (!root || !data || typeof data.before !== "string" || typeof data.after !== "string") return;
  let instance = INSTANCES.get(root);
  if (!instance) {
    instance = setup(root);
    INSTANCES.set(root, instance);
  }
  instance.setStateValue = setStateValue;
  update(instance, data);
  return () => clearTimeout(instance.timer);
}
