// Building the page without HTML strings: every piece of text, whoever wrote it, goes in as a
// text node; nothing here ever assigns innerHTML.

/**
 * An element: h("a", { href: "#/x", class: "link", onclick: fn }, "text", child, [more]).
 * Props: `class`, `text`, `on<event>` (listeners), DOM properties (`value`, `checked`,
 * `disabled`, `selected`), anything else as an attribute (true → present, false/null → absent).
 */
export function h(tag, props, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(props ?? {})) {
    if (value === undefined || value === null || value === false) continue;
    if (key === "class") el.className = value;
    else if (key === "text") el.textContent = value;
    else if (key.startsWith("on") && typeof value === "function") el.addEventListener(key.slice(2), value);
    else if (key === "value" || key === "checked" || key === "disabled" || key === "selected") el[key] = value;
    else el.setAttribute(key, value === true ? "" : String(value));
  }
  append(el, children);
  return el;
}

/** Appends children (nodes, strings, arrays of them; null and false are skipped). */
export function append(el, children) {
  for (const child of [children].flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    el.append(child instanceof Node ? child : String(child));
  }
  return el;
}

/** Replaces an element's children. */
export function replace(el, ...children) {
  el.replaceChildren();
  return append(el, children);
}

let nextId = 0;
/** A unique id for label/field pairs. */
export function uid(prefix = "f") {
  nextId += 1;
  return `${prefix}-${nextId}`;
}

/**
 * A labelled field: the control gets an id, the label points at it, a hint is tied with
 * aria-describedby.
 */
export function field(label, control, hint) {
  control.id ||= uid();
  const parts = [h("label", { for: control.id }, label), control];
  if (hint) {
    const hintId = `${control.id}-hint`;
    control.setAttribute("aria-describedby", hintId);
    parts.push(h("p", { class: "hint", id: hintId }, hint));
  }
  return h("div", { class: "field" }, parts);
}

/** A <select> from [value, label] pairs. */
export function select(props, options, current) {
  return h(
    "select",
    props,
    options.map(([value, label]) => h("option", { value, selected: String(value) === String(current ?? "") }, label)),
  );
}

/**
 * The URL if it is https, else null: the only pictures ever shown. Pictures are whatever URL
 * their owner chose, and an admin's browser shows everyone's: a plain http address would have
 * it fetch from an internal host (a blind GET, its address and the time it looked given away).
 * The page's Content-Security-Policy (img-src 'self' https:) says the same.
 */
export function safeImageUrl(url) {
  if (typeof url !== "string" || url === "") return null;
  try {
    const parsed = new URL(url);
    return parsed.protocol === "https:" ? parsed.href : null;
  } catch {
    return null;
  }
}

const dateFormat = new Intl.DateTimeFormat(undefined, { dateStyle: "medium", timeStyle: "short" });

/** A <time> element for an ISO date (or a dash). */
export function when(iso) {
  if (!iso) return h("span", { class: "muted" }, "—");
  const date = new Date(iso);
  if (Number.isNaN(date.getTime())) return h("span", null, iso);
  return h("time", { datetime: date.toISOString() }, dateFormat.format(date));
}

/** Initials for a picture-less avatar. */
export function initials(name, email) {
  const source = (name || email || "?").trim();
  const words = source.split(/\s+/).filter(Boolean);
  const letters = words.length > 1 ? words[0][0] + words[words.length - 1][0] : source.slice(0, 2);
  return letters.toUpperCase();
}

/** A round picture, or the initials when there is no safe picture (or it fails to load). */
export function avatar(user, size = "large") {
  const box = h("span", { class: `avatar avatar-${size}`, "aria-hidden": "true" }, initials(user.name, user.email));
  const src = safeImageUrl(user.image);
  if (src) {
    const img = h("img", { src, alt: "", referrerpolicy: "no-referrer" });
    img.addEventListener("error", () => img.remove());
    box.append(img);
  }
  return box;
}

/** A small label such as "admin" or "banned". */
export function badge(text, kind = "") {
  return h("span", { class: `badge ${kind}`.trim() }, text);
}

/** A short device description from a user agent. */
export function describeAgent(ua) {
  if (!ua) return "Unknown device";
  const browser =
    [
      [/Edg\//, "Edge"],
      [/OPR\//, "Opera"],
      [/Firefox\//, "Firefox"],
      [/(Headless)?Chrom(e|ium)\//, "Chrome"],
      [/Safari\//, "Safari"],
      [/curl\//, "curl"],
      [/node|undici/i, "Node.js"],
    ].find(([re]) => re.test(ua))?.[1] ?? "Browser";
  const os =
    [
      [/Android/, "Android"],
      [/iPhone|iPad|iOS/, "iOS"],
      [/Mac OS X|Macintosh/, "macOS"],
      [/Windows/, "Windows"],
      [/CrOS/, "ChromeOS"],
      [/Linux/, "Linux"],
    ].find(([re]) => re.test(ua))?.[1] ?? null;
  return os ? `${browser} on ${os}` : browser;
}
