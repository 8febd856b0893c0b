// The 3D scan viewer (docs/viewer.md). Imported by app.js only when a "View in 3D" panel opens; three.js
// comes with it from static/vendor (copied there from npm by make). Everything is in the scan's own
// coordinates (mm): the web copy's node turns its quantised positions back into them, and the camera, the
// picked points and the pins use them as they are.
import * as THREE from "../vendor/three/three.module.js";
import { OrbitControls } from "../vendor/three/controls/OrbitControls.js";
import { GLTFLoader } from "../vendor/three/loaders/GLTFLoader.js";

const BACKGROUND = 0xf4f1ec;
const FOV = 35;
// The default view: from above the scan, a little from its front (+y), at 1.6 diagonals.
const VIEW_DIRECTION = new THREE.Vector3(0, 0.5, 1).normalize();
const VIEW_DISTANCE = 1.6;
const MEASURE_COLOUR = 0x1d6fd1;
const PIN_COLOUR = 0x7a1fa2;
const CLICK_SLOP = 5; // pixels a pointer may move between down and up and still be a click, not a drag

const viewers = new WeakMap();

export function open(details, view) {
  let viewer = viewers.get(details);
  if (!viewer) {
    viewer = new Viewer(details);
    viewers.set(details, viewer);
  }
  if (view) viewer.ready.then(() => viewer.showPin(view));
  return viewer.ready;
}

function hasWebGL() {
  try {
    return !!document.createElement("canvas").getContext("webgl2");
  } catch (error) {
    return false;
  }
}

function fixed(values, places) {
  return values.map((n) => n.toFixed(places)).join(" ");
}

class Viewer {
  constructor(details) {
    this.el = details;
    this.status = details.querySelector("[data-viewer-status]");
    this.stage = details.querySelector("[data-viewer-stage]");
    this.copies = {};
    this.mode = null;
    this.points = [];
    this.helpers = new THREE.Group();
    if (!hasWebGL()) {
      this.say(details.dataset.textNoWebgl);
      this.ready = new Promise(() => {}); // never: pins cannot be shown without WebGL
      return;
    }
    this.say(details.dataset.textLoading);
    this.ready = this.start().catch((error) => {
      this.say(details.dataset.textFailed);
      throw error;
    });
  }

  say(text) {
    this.status.textContent = text || "";
  }

  async start() {
    const canvas = document.createElement("canvas");
    canvas.tabIndex = 0;
    canvas.setAttribute("role", "img");
    canvas.setAttribute("aria-label", this.el.dataset.textCanvas || "");
    this.stage.appendChild(canvas);
    this.stage.hidden = false;
    this.canvas = canvas;
    this.renderer = new THREE.WebGLRenderer({ canvas, antialias: true });
    this.renderer.setPixelRatio(window.devicePixelRatio || 1);
    this.scene = new THREE.Scene();
    this.scene.background = new THREE.Color(BACKGROUND);
    this.scene.add(new THREE.HemisphereLight(0xffffff, 0x8a8070, 1.6));
    this.camera = new THREE.PerspectiveCamera(FOV, 1, 0.01, 1000);
    const headlight = new THREE.DirectionalLight(0xffffff, 1.4);
    headlight.position.set(0.3, 0.5, 1);
    this.camera.add(headlight);
    this.scene.add(this.camera);
    this.scene.add(this.helpers);

    this.frame(await this.load("after"));
    await this.show("after");

    this.controls = new OrbitControls(this.camera, canvas);
    this.controls.listenToKeyEvents(canvas); // arrows move; Shift (or Ctrl) with arrows turns
    this.controls.target.copy(this.home.target);
    this.controls.addEventListener("change", () => this.render());
    this.reset();
    this.wire();
    this.resize();
    window.addEventListener("resize", () => this.resize());
    this.say("");
    this.el.querySelectorAll("[data-viewer-tools]").forEach((tools) => (tools.hidden = false));
    this.el.dataset.state = "ready";
  }

  async load(which) {
    if (!this.copies[which]) {
      const url = this.el.dataset[which];
      this.copies[which] = new GLTFLoader().loadAsync(url).then((gltf) => {
        const root = gltf.scene;
        root.traverse((node) => {
          if (node.isMesh) {
            node.geometry.computeVertexNormals();
            node.material.side = THREE.DoubleSide;
          }
        });
        root.updateMatrixWorld(true);
        return root;
      });
    }
    return this.copies[which];
  }

  // The home view looks at the scan's surface point nearest its box's centre, so the middle of the picture
  // always shows the scan (an arch's box centre is often empty space between its sides).
  frame(root) {
    const box = new THREE.Box3().setFromObject(root);
    const centre = box.getCenter(new THREE.Vector3());
    this.diagonal = box.getSize(new THREE.Vector3()).length();
    let best = centre.clone();
    let bestDistance = Infinity;
    const v = new THREE.Vector3();
    root.traverse((node) => {
      if (!node.isMesh) return;
      const position = node.geometry.attributes.position;
      for (let i = 0; i < position.count; i++) {
        v.fromBufferAttribute(position, i).applyMatrix4(node.matrixWorld);
        const d = v.distanceToSquared(centre);
        if (d < bestDistance) {
          bestDistance = d;
          best = v.clone();
        }
      }
    });
    this.home = {
      target: best,
      camera: best.clone().addScaledVector(VIEW_DIRECTION, VIEW_DISTANCE * this.diagonal),
    };
    this.camera.near = this.diagonal / 1000;
    this.camera.far = this.diagonal * 100;
    this.camera.updateProjectionMatrix();
    this.markerSize = this.diagonal * 0.006;
  }

  reset() {
    this.camera.position.copy(this.home.camera);
    this.controls.target.copy(this.home.target);
    this.controls.update();
    this.render();
  }

  resize() {
    const width = this.stage.clientWidth || 640;
    const height = Math.round(Math.min(520, Math.max(260, width * 0.62)));
    this.renderer.setSize(width, height);
    this.camera.aspect = width / height;
    this.camera.updateProjectionMatrix();
    this.render();
  }

  async show(which) {
    const root = await this.load(which);
    if (this.current) this.scene.remove(this.current);
    this.current = root;
    this.scene.add(root);
    this.applyMarks();
    this.el.dataset.showing = which;
    this.render();
  }

  applyMarks() {
    const marks = this.el.querySelector("[data-viewer-marks]");
    const on = !marks || marks.checked;
    this.current.traverse((node) => {
      if (node.isMesh && node.material.vertexColors !== on) {
        node.material.vertexColors = on;
        node.material.needsUpdate = true;
      }
    });
    this.el.dataset.marks = on ? "shown" : "hidden";
  }

  render() {
    if (!this.renderer || !this.current) return;
    this.renderer.render(this.scene, this.camera);
    this.el.dataset.camera = fixed(this.camera.position.toArray(), 4);
    this.el.dataset.target = fixed(this.controls ? this.controls.target.toArray() : this.home.target.toArray(), 4);
  }

  wire() {
    const el = this.el;
    el.querySelectorAll("[data-viewer-copy]").forEach((radio) => {
      radio.addEventListener("change", () => radio.checked && this.show(radio.value));
    });
    const marks = el.querySelector("[data-viewer-marks]");
    if (marks) marks.addEventListener("change", () => { this.applyMarks(); this.render(); });
    el.querySelector("[data-viewer-reset]").addEventListener("click", () => this.reset());
    el.querySelectorAll("[data-viewer-measure], [data-viewer-pin]").forEach((button) => {
      button.addEventListener("click", () => this.setMode(button));
    });
    this.canvas.addEventListener("keydown", (event) => this.key(event));
    let down = null;
    this.canvas.addEventListener("pointerdown", (event) => { down = [event.clientX, event.clientY]; });
    this.canvas.addEventListener("pointerup", (event) => {
      if (down && Math.hypot(event.clientX - down[0], event.clientY - down[1]) <= CLICK_SLOP) this.click(event);
      down = null;
    });
  }

  setMode(button) {
    const mode = "viewerMeasure" in button.dataset ? "measure" : "pin";
    this.mode = this.mode === mode ? null : mode;
    this.el.querySelectorAll("[data-viewer-measure], [data-viewer-pin]").forEach((b) => {
      const bMode = "viewerMeasure" in b.dataset ? "measure" : "pin";
      b.setAttribute("aria-pressed", String(this.mode === bMode));
    });
    this.el.dataset.mode = this.mode || "";
    this.canvas.focus({ preventScroll: true });
  }

  key(event) {
    const offset = this.camera.position.clone().sub(this.controls.target);
    if (event.key === "+" || event.key === "=") offset.multiplyScalar(0.8);
    else if (event.key === "-" || event.key === "_") offset.multiplyScalar(1.25);
    else if (event.key === "0") return this.reset();
    else return;
    event.preventDefault();
    this.camera.position.copy(this.controls.target).add(offset);
    this.controls.update();
  }

  pick(event) {
    const rect = this.canvas.getBoundingClientRect();
    const ndc = new THREE.Vector2(
      ((event.clientX - rect.left) / rect.width) * 2 - 1,
      -((event.clientY - rect.top) / rect.height) * 2 + 1,
    );
    const raycaster = new THREE.Raycaster();
    raycaster.setFromCamera(ndc, this.camera);
    const hit = raycaster.intersectObject(this.current, true)[0];
    return hit ? hit.point : null;
  }

  marker(point, colour) {
    const sphere = new THREE.Mesh(
      new THREE.SphereGeometry(this.markerSize, 16, 12),
      new THREE.MeshBasicMaterial({ color: colour, depthTest: false }),
    );
    sphere.renderOrder = 1;
    sphere.position.copy(point);
    this.helpers.add(sphere);
    return sphere;
  }

  click(event) {
    if (!this.mode) return;
    const point = this.pick(event);
    if (!point) return;
    if (this.mode === "measure") this.measure(point);
    else this.placePin(point);
    this.render();
  }

  clearHelpers(kind) {
    this.helpers.children.filter((c) => c.userData.kind === kind).forEach((c) => this.helpers.remove(c));
  }

  measure(point) {
    if (this.points.length === 2) this.points = [];
    this.clearHelpers("measure");
    this.points.push(point.clone());
    this.points.forEach((p) => (this.marker(p, MEASURE_COLOUR).userData.kind = "measure"));
    const output = this.el.querySelector("[data-viewer-distance]");
    if (this.points.length === 2) {
      const [a, b] = this.points;
      const line = new THREE.Line(
        new THREE.BufferGeometry().setFromPoints([a, b]),
        new THREE.LineBasicMaterial({ color: MEASURE_COLOUR, depthTest: false }),
      );
      line.userData.kind = "measure";
      this.helpers.add(line);
      output.textContent = a.distanceTo(b).toFixed(1) + " mm";
      this.el.dataset.measure = fixed([...a.toArray(), ...b.toArray()], 4);
    } else {
      output.textContent = "";
      delete this.el.dataset.measure;
    }
  }

  placePin(point) {
    this.showMarker(point);
    const prefix = this.el.dataset.pinPrefix;
    const set = (name, value) => {
      const field = document.getElementById(prefix + "-" + name);
      if (field) field.value = value.toFixed(4);
    };
    ["x", "y", "z"].forEach((axis, i) => set(axis, point.getComponent(i)));
    ["x", "y", "z"].forEach((axis, i) => {
      set("camera_" + axis, this.camera.position.getComponent(i));
      set("target_" + axis, this.controls.target.getComponent(i));
    });
    // The same pin can go with a rescan request instead (one pin per request): fill its hidden fields
    // and offer the box, which only a placed pin makes sense of.
    const rescan = this.el.dataset.rescanPrefix;
    const field = (name) => document.getElementById(rescan + "-" + name);
    ["x", "y", "z"].forEach((axis, i) => {
      [[axis, point], ["camera_" + axis, this.camera.position], ["target_" + axis, this.controls.target]]
        .forEach(([name, vector]) => {
          const input = field(name);
          if (input) input.value = vector.getComponent(i).toFixed(4);
        });
    });
    const box = field("x")?.form?.querySelector("[data-rescan-pin]");
    if (box) box.hidden = false;
    const comment = document.getElementById(prefix + "-body");
    if (comment) comment.focus();
  }

  showMarker(point) {
    this.clearHelpers("pin");
    this.marker(point, PIN_COLOUR).userData.kind = "pin";
    this.el.dataset.pin = fixed(point.toArray(), 4);
  }

  showPin(view) {
    this.camera.position.fromArray(view.camera);
    this.controls.target.fromArray(view.target);
    this.controls.update();
    this.showMarker(new THREE.Vector3().fromArray(view.point));
    this.render();
    this.canvas.focus();
  }
}
