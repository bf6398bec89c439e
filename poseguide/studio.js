// The studio's pose canvas: the generated person with the skeleton over it.
//
// Runs as gr.HTML's js_on_load, so `element`, `props`, `trigger` and `watch` come from Gradio.
// The server sends props.value = {image: a PNG data URL, pose: a keypoints dict or null,
// stamp}. Dragging a joint fires the component's input event with the pose (the same
// keypoints dict, as JSON); the server answers with the redrawn image.
// One pose is in flight at a time and at most one is sent per MIN_INTERVAL_MS, so a fast
// drag never queues up stale redraws: the newest pose is sent when the last answer arrives.

const MIN_INTERVAL_MS = 40;
const ANSWER_TIMEOUT_MS = 3000; // a lost answer must not stop the drag from redrawing
const GRAB_RADIUS_PX = 14;

const canvas = element.querySelector("canvas");
const ctx = canvas.getContext("2d");
const picture = new Image();
let pose = null; // keypoints dict: {format, image_size, landmarks: [{name, x, y, z, visibility}]}
let dragged = -1;
let inFlight = false;
let lastSent = 0;
let unsent = false;
let timer = null;

function colour(i) {
  const side = props.sides[i];
  const rgb = side > 0 ? props.colours.left : side < 0 ? props.colours.right : props.colours.centre;
  return `rgb(${rgb.join(",")})`;
}

function at(i) {
  const p = pose.landmarks[i];
  return [p.x * canvas.width, p.y * canvas.height];
}

function visible(i) {
  return pose.landmarks[i].visibility >= 0.5;
}

function draw() {
  ctx.clearRect(0, 0, canvas.width, canvas.height);
  if (picture.complete && picture.naturalWidth) {
    ctx.imageSmoothingEnabled = true;
    ctx.drawImage(picture, 0, 0, canvas.width, canvas.height);
  }
  if (!pose) return;
  ctx.lineWidth = 3;
  for (const [a, b] of props.edges) {
    if (!visible(a) || !visible(b)) continue;
    ctx.strokeStyle = props.sides[a] === props.sides[b] ? colour(a) : colour(0);
    ctx.beginPath();
    ctx.moveTo(...at(a));
    ctx.lineTo(...at(b));
    ctx.stroke();
  }
  pose.landmarks.forEach((_, i) => {
    if (!visible(i)) return;
    ctx.fillStyle = i === dragged ? "white" : colour(i);
    ctx.beginPath();
    ctx.arc(...at(i), i === dragged ? 7 : 5, 0, 2 * Math.PI);
    ctx.fill();
  });
}

function send() {
  if (!pose) return;
  trigger("input", { pose: JSON.stringify(pose) });
  inFlight = true;
  unsent = false;
  lastSent = performance.now();
  clearTimeout(timer);
  timer = setTimeout(() => { inFlight = false; sendSoon(); }, ANSWER_TIMEOUT_MS);
  markBusy();
}

// "1" while a pose is being dragged, waits to be sent or waits for its image: tests and
// screenshots wait for "0" before they read what the page shows.
function markBusy() {
  canvas.dataset.busy = dragged >= 0 || unsent || inFlight ? "1" : "0";
}

function sendSoon() {
  markBusy();
  if (!unsent || inFlight) return;
  const wait = MIN_INTERVAL_MS - (performance.now() - lastSent);
  if (wait <= 0) send();
  else { clearTimeout(timer); timer = setTimeout(sendSoon, wait); }
}

function pointer(event) {
  const box = canvas.getBoundingClientRect();
  return [(event.clientX - box.left) * canvas.width / box.width, (event.clientY - box.top) * canvas.height / box.height];
}

canvas.addEventListener("pointerdown", (event) => {
  if (!pose) return;
  const [x, y] = pointer(event);
  let best = -1, bestDistance = GRAB_RADIUS_PX;
  pose.landmarks.forEach((_, i) => {
    if (!visible(i)) return;
    const [px, py] = at(i);
    const distance = Math.hypot(px - x, py - y);
    if (distance <= bestDistance) { best = i; bestDistance = distance; }
  });
  if (best < 0) return;
  dragged = best;
  markBusy();
  canvas.setPointerCapture(event.pointerId);
  event.preventDefault();
  draw();
});

canvas.addEventListener("pointermove", (event) => {
  if (dragged < 0) return;
  const [x, y] = pointer(event);
  const joint = pose.landmarks[dragged];
  const nx = Math.min(1, Math.max(0, x / canvas.width));
  const ny = Math.min(1, Math.max(0, y / canvas.height));
  const dx = nx - joint.x, dy = ny - joint.y;
  for (const i of [dragged, ...(props.followers[dragged] || [])]) {
    const p = pose.landmarks[i];
    p.x = Math.min(1, Math.max(0, p.x + dx));
    p.y = Math.min(1, Math.max(0, p.y + dy));
  }
  unsent = true;
  canvas.dataset.pose = JSON.stringify(pose);
  draw();
  sendSoon();
});

function release() {
  if (dragged < 0) return;
  dragged = -1;
  draw();
  sendSoon();
}
canvas.addEventListener("pointerup", release);
canvas.addEventListener("pointercancel", release);

function receive() {
  const value = props.value;
  if (!value || typeof value !== "object") return;
  if (value.pose && dragged < 0 && !unsent) pose = value.pose;
  if (value.image) picture.src = value.image;
  canvas.dataset.stamp = value.stamp; // what arrived last, for tests and screenshots
  canvas.dataset.image = value.image || "";
  canvas.dataset.pose = JSON.stringify(pose);
  inFlight = false;
  sendSoon();
}
picture.onload = draw;
watch("value", receive);
receive();
