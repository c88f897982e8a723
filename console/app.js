// The console's shell: who is signed in, the navigation, hash routes (#/profile,
// #/admin/users?search=…), and what happens on errors — a sentence in the page, never a
// blank one.

import * as auth from "./auth.js";
import { api, permissions } from "./api.js";
import { Problem, SESSION_ENDED, describe } from "./problem.js";
import { avatar, field, h, replace } from "./dom.js";
import * as me from "./me.js";
import * as admin from "./admin.js";

const main = document.getElementById("main");
const nav = document.getElementById("nav");
const who = document.getElementById("who");
const notice = document.getElementById("notice");

const state = {
  /** warden's /users/me, or null when signed out. */
  user: null,
  /** permission → bool, from /users/me/has-permission. */
  can: {},
  /** A message for the next page shown: {text, error} (after a change, a sign-out, a session that ended). */
  flash: null,
  /** Set when the session ended with a ban: the page says so until the person moves on. */
  banned: null,
  /** `user` was just set from a change's answer: the profile page need not read it again. */
  userFresh: false,
};

// Pages for a signed-in person: path pattern, page, title, permission needed.
const ROUTES = [
  { path: /^\/profile$/, page: me.profile, title: "Profile" },
  { path: /^\/sessions$/, page: me.sessions, title: "Sessions" },
  { path: /^\/accounts$/, page: me.accounts, title: "Linked accounts" },
  { path: /^\/organizations$/, page: me.organizations, title: "Organizations" },
  { path: /^\/admin\/users$/, page: admin.users, title: "Users", needs: "user:list" },
  { path: /^\/admin\/users\/([^/]+)$/, page: admin.user, title: "User", needs: "user:get" },
  { path: /^\/admin\/audit$/, page: admin.audit, title: "Audit log", needs: "audit:list" },
];

const NAV = [
  { href: "#/profile", label: "Profile" },
  { href: "#/sessions", label: "Sessions" },
  { href: "#/accounts", label: "Linked accounts" },
  { href: "#/organizations", label: "Organizations" },
  { href: "#/admin/users", label: "Users", needs: "user:list", admin: true },
  { href: "#/admin/audit", label: "Audit log", needs: "audit:list", admin: true },
];

function parseHash() {
  const raw = location.hash.slice(1) || "/";
  const cut = raw.indexOf("?");
  const path = cut === -1 ? raw : raw.slice(0, cut);
  const params = new URLSearchParams(cut === -1 ? "" : raw.slice(cut + 1));
  // Better-Auth sends people back with ?error=… on the page address itself.
  for (const [k, v] of new URLSearchParams(location.search)) if (!params.has(k)) params.set(k, v);
  return { path, params };
}

function safeDecode(text) {
  try {
    return decodeURIComponent(text);
  } catch {
    return text;
  }
}

/** Goes to `path` with `query`; renders even when the address does not change. */
function go(path, query) {
  const text = query ? new URLSearchParams(Object.entries(query).filter(([, v]) => v !== "" && v != null)).toString() : "";
  const target = `#${path}${text ? `?${text}` : ""}`;
  if (location.hash === target) render();
  else location.hash = target;
}

function showNotice(message) {
  replace(notice, h("p", null, message), h("button", { type: "button", class: "link", onclick: () => (notice.hidden = true) }, "Dismiss"));
  notice.hidden = false;
}

/** Ends this tab's session after warden or Better-Auth said it is over. */
function endSession(err) {
  auth.forget();
  state.user = null;
  state.can = {};
  if (err?.code === "banned") {
    state.banned = describe(err);
  } else {
    state.flash = { text: `Your session has ended: ${describe(err)} Please sign in again.`, error: true };
  }
  go("/sign-in");
}

/** Whether an error means the session is over (then handled here, not by the page). */
function sessionEnded(err) {
  return err instanceof Problem && SESSION_ENDED.has(err.code);
}

/**
 * Runs a page's action: the button is disabled meanwhile, an error goes into `alert` (a
 * role="alert" element), a session that ended goes back to signing in.
 */
async function act(button, alert, fn) {
  if (button) button.disabled = true;
  if (alert) {
    alert.hidden = true;
    alert.textContent = "";
  }
  try {
    await fn();
  } catch (err) {
    if (sessionEnded(err)) return endSession(err);
    if (alert) {
      alert.textContent = describe(err);
      alert.hidden = false;
    } else {
      showNotice(describe(err));
    }
  } finally {
    if (button && button.isConnected) button.disabled = false;
  }
}

function alertBox() {
  return h("p", { class: "alert", role: "alert", hidden: true });
}

function heading(text) {
  return h("h1", { tabindex: "-1" }, text);
}

/** The context every page gets. */
function context(params, match) {
  return {
    user: state.user,
    can: state.can,
    params,
    id: match?.[1] ? safeDecode(match[1]) : undefined,
    go,
    act,
    alertBox,
    heading,
    reload: render,
    flash(message) {
      state.flash = { text: message, error: false };
    },
    async refreshAccess() {
      state.can = await permissions();
      drawChrome();
    },
    async refreshUser() {
      state.user = await api("/users/me");
      drawChrome();
      return state.user;
    },
    /**
     * The profile a change just answered with: the next page shows it as is. (warden's row
     * cache learns of its own writes through PostgreSQL a few milliseconds later, so an
     * immediate GET /users/me could still answer the old row.)
     */
    setUser(user) {
      state.user = user;
      state.userFresh = true;
      drawChrome();
    },
    /** The signed-in person's profile: the one just set, else read again from warden. */
    async currentUser() {
      if (state.userFresh) {
        state.userFresh = false;
        return state.user;
      }
      return this.refreshUser();
    },
  };
}

function drawChrome() {
  const { path } = parseHash();
  if (!state.user) {
    nav.hidden = true;
    replace(nav);
    replace(who);
    return;
  }
  nav.hidden = false;
  const links = NAV.filter((item) => !item.needs || state.can[item.needs]);
  const item = (link) => {
    const current = path === link.href.slice(1) || (link.href === "#/admin/users" && path.startsWith("/admin/users/"));
    return h("li", null, h("a", { href: link.href, "aria-current": current ? "page" : null }, link.label));
  };
  const own = links.filter((l) => !l.admin);
  const adminLinks = links.filter((l) => l.admin);
  replace(
    nav,
    h("ul", null, own.map(item)),
    adminLinks.length ? h("ul", { class: "admin-nav", "aria-label": "Administration" }, adminLinks.map(item)) : null,
  );
  replace(
    who,
    avatar(state.user, "small"),
    h("span", { class: "who-name" }, state.user.name || state.user.email),
    h("button", { type: "button", class: "secondary", id: "sign-out", onclick: signOut }, "Sign out"),
  );
}

async function signOut(event) {
  const button = event?.currentTarget;
  await act(button, null, async () => {
    try {
      await auth.signOut();
    } finally {
      state.user = null;
      state.can = {};
      state.flash = { text: "You are signed out.", error: false };
      go("/sign-in");
    }
  });
}

async function loadUser() {
  state.user = await api("/users/me");
  state.userFresh = true;
  state.can = await permissions();
}

// ---------------------------------------------------------------- signing in

// How the providers whose names are not just their id capitalised are written.
const PROVIDER_NAMES = { github: "GitHub", gitlab: "GitLab", linkedin: "LinkedIn", tiktok: "TikTok", huggingface: "Hugging Face", paypal: "PayPal" };

function providerName(id) {
  return PROVIDER_NAMES[id] ?? id.charAt(0).toUpperCase() + id.slice(1);
}

function socialButtons() {
  const providers = auth.socialProviders();
  if (!providers.length) return null;
  const alert = alertBox();
  return h(
    "div",
    { class: "social" },
    h("p", { class: "divider" }, "or"),
    providers.map((p) =>
      h(
        "button",
        { type: "button", class: `secondary social-${p}`, onclick: (e) => act(e.currentTarget, alert, () => auth.socialSignIn(p)) },
        `Continue with ${providerName(p)}`,
      ),
    ),
    alert,
  );
}

function afterSignIn() {
  return act(null, null, async () => {
    await loadUser();
    state.banned = null;
    go("/profile");
  });
}

async function signInPage(params) {
  const email = h("input", { type: "email", name: "email", autocomplete: "username", required: true });
  const password = h("input", { type: "password", name: "password", autocomplete: "current-password", required: true });
  const alert = alertBox();
  const submit = h("button", { type: "submit" }, "Sign in");
  const form = h(
    "form",
    {
      class: "card narrow",
      "aria-labelledby": "sign-in-title",
      onsubmit: (event) => {
        event.preventDefault();
        act(submit, alert, async () => {
          await auth.signIn(email.value.trim(), password.value);
          await afterSignIn();
        });
      },
    },
    h("h1", { id: "sign-in-title", tabindex: "-1" }, "Sign in"),
    field("Email", email),
    field("Password", password),
    alert,
    h("div", { class: "actions" }, submit),
    socialButtons(),
    h("p", { class: "switch" }, "No account yet? ", h("a", { href: "#/sign-up" }, "Create one")),
  );
  const error = params.get("error");
  if (error) {
    alert.textContent = `Signing in did not work (${error.replace(/_/g, " ")}).`;
    alert.hidden = false;
  }
  return [form];
}

async function signUpPage() {
  const name = h("input", { type: "text", name: "name", autocomplete: "name", required: true, maxlength: "100" });
  const email = h("input", { type: "email", name: "email", autocomplete: "email", required: true });
  const password = h("input", { type: "password", name: "password", autocomplete: "new-password", required: true, minlength: "8" });
  const alert = alertBox();
  const submit = h("button", { type: "submit" }, "Create account");
  const form = h(
    "form",
    {
      class: "card narrow",
      "aria-labelledby": "sign-up-title",
      onsubmit: (event) => {
        event.preventDefault();
        act(submit, alert, async () => {
          await auth.signUp(name.value.trim(), email.value.trim(), password.value);
          await afterSignIn();
        });
      },
    },
    h("h1", { id: "sign-up-title", tabindex: "-1" }, "Create an account"),
    field("Name", name),
    field("Email", email),
    field("Password", password, "At least 8 characters."),
    alert,
    h("div", { class: "actions" }, submit),
    socialButtons(),
    h("p", { class: "switch" }, "Already have an account? ", h("a", { href: "#/sign-in" }, "Sign in")),
  );
  return [form];
}

function bannedPage() {
  return [
    h(
      "section",
      { class: "card narrow banned", "aria-labelledby": "banned-title" },
      h("h1", { id: "banned-title", tabindex: "-1" }, "Account banned"),
      h("p", { class: "alert", role: "alert" }, state.banned),
      h("p", null, "You have been signed out. Contact an administrator if you think this is a mistake."),
      h("div", { class: "actions" }, h("button", { type: "button", onclick: () => { state.banned = null; go("/sign-in"); } }, "Back to sign-in")),
    ),
  ];
}

// ---------------------------------------------------------------- rendering

let renderTicket = 0;

async function render() {
  const ticket = ++renderTicket;
  const { path, params } = parseHash();
  drawChrome();
  let title = "Sign in";
  let build;
  if (state.banned) {
    title = "Account banned";
    build = () => bannedPage();
  } else if (!state.user) {
    if (path === "/sign-up") {
      title = "Create an account";
      build = () => signUpPage();
    } else {
      build = () => signInPage(params);
    }
  } else {
    let match = null;
    const route = ROUTES.find((r) => (match = r.path.exec(path)));
    if (!route) {
      go("/profile");
      return;
    }
    title = route.title;
    if (route.needs && !state.can[route.needs]) {
      build = () => [heading("Not allowed"), h("p", null, `This page needs the permission ${route.needs}, which your roles do not grant.`)];
    } else {
      build = () => route.page(context(params, match));
    }
  }
  document.title = `${title} · warden console`;
  main.setAttribute("aria-busy", "true");
  let nodes;
  try {
    nodes = await build();
  } catch (err) {
    if (ticket !== renderTicket) return;
    if (sessionEnded(err)) {
      endSession(err);
      return;
    }
    nodes = [
      heading("This page could not be shown"),
      h("p", { class: "alert", role: "alert" }, describe(err)),
      h("div", { class: "actions" }, h("button", { type: "button", onclick: () => render() }, "Try again")),
    ];
  }
  if (ticket !== renderTicket) return;
  const flash = state.flash
    ? h("p", { class: state.flash.error ? "alert" : "flash", role: state.flash.error ? "alert" : "status" }, state.flash.text)
    : null;
  state.flash = null;
  replace(main, flash, nodes);
  main.removeAttribute("aria-busy");
  drawChrome();
  // Keyboard and screen-reader users land on the new page's title.
  main.querySelector("h1")?.focus({ preventScroll: false });
}

async function start() {
  window.addEventListener("hashchange", render);
  window.addEventListener("unhandledrejection", (event) => showNotice(describe(event.reason)));
  document.querySelector(".skip")?.addEventListener("click", (event) => {
    event.preventDefault();
    (main.querySelector("h1") ?? main).focus();
  });
  auth.onSessionEnd((err) => {
    if (state.user) endSession(err);
  });
  try {
    if (await auth.resume()) await loadUser();
  } catch (err) {
    state.user = null;
    if (err?.code === "banned") state.banned = describe(err);
    else if (!sessionEnded(err)) state.flash = { text: describe(err), error: true };
  }
  render();
}

start();
