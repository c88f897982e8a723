// The admin pages: users (search, filters, sorting, pages), one user (roles, ban, sessions,
// audit entries, removal) and the audit log. Each control appears only when the signed-in
// person's roles grant it (ctx.can, asked through /users/me/has-permission); warden decides
// again on every call.

import { api } from "./api.js";
import { avatar, badge, describeAgent, field, h, select, when } from "./dom.js";
import { table } from "./me.js";

const SORTS = {
  newest: ["createdAt", "desc", "Newest first"],
  oldest: ["createdAt", "asc", "Oldest first"],
  "email-asc": ["email", "asc", "Email A–Z"],
  "email-desc": ["email", "desc", "Email Z–A"],
  "name-asc": ["name", "asc", "Name A–Z"],
  "name-desc": ["name", "desc", "Name Z–A"],
  updated: ["updatedAt", "desc", "Recently updated"],
};

const PAGE_SIZES = ["20", "50", "100", "200"];

function whole(text, fallback) {
  const n = Number(text);
  return Number.isInteger(n) && n >= 0 ? n : fallback;
}

/** "Showing 21–40 of 345" and Previous/Next buttons that change `offset`. */
function pager({ total, limit, offset }, shown, goTo, noun) {
  const from = shown ? offset + 1 : 0;
  const to = offset + shown;
  return h(
    "nav",
    { class: "pager", "aria-label": `${noun} pages` },
    h("p", { class: "muted", role: "status" }, total === 0 ? `No ${noun}.` : `Showing ${from}–${to} of ${total} ${noun}`),
    h(
      "div",
      { class: "pager-buttons" },
      h("button", { type: "button", class: "secondary", disabled: offset === 0, onclick: () => goTo(Math.max(0, offset - limit)) }, "Previous"),
      h("button", { type: "button", class: "secondary", disabled: to >= total, onclick: () => goTo(offset + limit) }, "Next"),
    ),
  );
}

function userLink(ctx, id, text) {
  if (!id) return h("span", { class: "muted" }, "—");
  if (ctx.user && id === ctx.user.id) return h("a", { href: `#/admin/users/${encodeURIComponent(id)}` }, "you");
  if (!ctx.can["user:get"]) return h("code", null, text ?? id);
  return h("a", { href: `#/admin/users/${encodeURIComponent(id)}` }, h("code", null, text ?? id));
}

/** Banned, and the ban has not ended (warden lets an expired ban through). */
function banActive(user) {
  return Boolean(user.banned) && (!user.banExpires || new Date(user.banExpires) > new Date());
}

function status(user) {
  return banActive(user) ? badge("banned", "danger") : badge("active", "ok");
}

// ---------------------------------------------------------------- users

export async function users(ctx) {
  const p = ctx.params;
  const sort = SORTS[p.get("sort")] ? p.get("sort") : "newest";
  const q = {
    search: p.get("search") ?? "",
    searchField: p.get("searchField") === "name" ? "name" : "email",
    searchOperator: ["starts_with", "ends_with"].includes(p.get("searchOperator")) ? p.get("searchOperator") : "contains",
    role: p.get("role") ?? "",
    banned: ["true", "false"].includes(p.get("banned")) ? p.get("banned") : "",
    sort,
    limit: PAGE_SIZES.includes(p.get("limit")) ? p.get("limit") : "20",
    offset: whole(p.get("offset"), 0),
  };
  const [sortBy, sortDirection] = SORTS[sort];
  const data = await api("/admin/users", {
    query: {
      search: q.search || undefined,
      searchField: q.search ? q.searchField : undefined,
      searchOperator: q.search ? q.searchOperator : undefined,
      role: q.role,
      banned: q.banned,
      sortBy,
      sortDirection,
      limit: q.limit,
      offset: q.offset,
    },
  });

  const search = h("input", { type: "search", name: "search", value: q.search, maxlength: "256", autocomplete: "off" });
  const searchField = select({ name: "searchField" }, [["email", "Email"], ["name", "Name"]], q.searchField);
  const searchOperator = select({ name: "searchOperator" }, [["contains", "contains"], ["starts_with", "starts with"], ["ends_with", "ends with"]], q.searchOperator);
  const role = h("input", { type: "text", name: "role", value: q.role, maxlength: "64", autocomplete: "off", placeholder: "any" });
  const banned = select({ name: "banned" }, [["", "Any"], ["true", "Banned"], ["false", "Not banned"]], q.banned);
  const sortSelect = select({ name: "sort" }, Object.entries(SORTS).map(([k, v]) => [k, v[2]]), q.sort);
  const limit = select({ name: "limit" }, PAGE_SIZES.map((n) => [n, n]), q.limit);
  const values = () => ({
    search: search.value.trim(),
    searchField: searchField.value,
    searchOperator: searchOperator.value,
    role: role.value.trim(),
    banned: banned.value,
    sort: sortSelect.value,
    limit: limit.value,
  });
  const form = h(
    "form",
    {
      class: "card filters",
      role: "search",
      "aria-label": "Find users",
      onsubmit: (event) => {
        event.preventDefault();
        ctx.go("/admin/users", { ...values(), offset: 0 });
      },
    },
    h("div", { class: "filter-grid" }, field("Search", search), field("In", searchField), field("Match", searchOperator), field("Role", role), field("Status", banned), field("Sort", sortSelect), field("Per page", limit)),
    h("div", { class: "actions" }, h("button", { type: "submit" }, "Search"), h("button", { type: "button", class: "secondary", onclick: () => ctx.go("/admin/users") }, "Clear")),
  );

  const rows = data.users.map((u) =>
    h(
      "tr",
      { "data-user-id": u.id },
      h("td", { "data-label": "Name" }, h("span", { class: "cell-user" }, avatar(u, "small"), ctx.can["user:get"] ? h("a", { href: `#/admin/users/${encodeURIComponent(u.id)}` }, u.name || "(no name)") : u.name)),
      h("td", { "data-label": "Email" }, u.email),
      h("td", { "data-label": "Roles" }, (u.roles.length ? u.roles : ["user"]).map((r) => badge(r, r === "admin" ? "accent" : ""))),
      h("td", { "data-label": "Status" }, status(u)),
      h("td", { "data-label": "Joined" }, when(u.createdAt)),
    ),
  );
  return [
    ctx.heading("Users"),
    form,
    data.users.length ? table(["Name", "Email", "Roles", "Status", "Joined"], rows, "Users") : h("p", { class: "empty" }, "No user matches."),
    pager(data, data.users.length, (offset) => ctx.go("/admin/users", { ...values(), offset }), "users"),
  ];
}

// ---------------------------------------------------------------- one user

const DURATIONS = [
  ["", "Forever"],
  ["3600", "1 hour"],
  ["86400", "1 day"],
  ["604800", "7 days"],
  ["2592000", "30 days"],
  ["31536000", "1 year"],
];

export async function user(ctx) {
  const id = ctx.id;
  const path = `/admin/users/${encodeURIComponent(id)}`;
  const [target, sessions, audit] = await Promise.all([
    api(path),
    ctx.can["session:list"] ? api(`${path}/sessions`) : null,
    ctx.can["audit:list"] ? api("/admin/audit", { query: { target: id, limit: 20 } }) : null,
  ]);
  const self = target.id === ctx.user.id;
  const sections = [
    ctx.heading(target.name || target.email),
    h("p", null, h("a", { href: "#/admin/users" }, "← All users")),
    summary(target),
  ];
  if (ctx.can["user:set-role"]) sections.push(rolesForm(ctx, target, path, self));
  if (ctx.can["user:ban"]) sections.push(banForm(ctx, target, path, self));
  if (sessions) sections.push(sessionList(ctx, target, sessions, path));
  if (audit) sections.push(auditSection(ctx, audit, id));
  if (ctx.can["user:delete"]) sections.push(removal(ctx, target, path, self));
  return sections;
}

function summary(target) {
  return h(
    "section",
    { class: "card profile", "aria-label": "Account" },
    avatar(target),
    h(
      "div",
      { class: "profile-text" },
      h("p", { class: "profile-name" }, target.name),
      h("p", { class: "profile-email" }, target.email),
      h("p", { class: "badges" }, (target.roles.length ? target.roles : ["user"]).map((r) => badge(r, r === "admin" ? "accent" : "")), status(target), target.emailVerified ? badge("email verified", "ok") : badge("email not verified")),
      h(
        "dl",
        { class: "facts" },
        h("dt", null, "User id"),
        h("dd", null, h("code", null, target.id)),
        h("dt", null, "Joined"),
        h("dd", null, when(target.createdAt)),
        h("dt", null, "Updated"),
        h("dd", null, when(target.updatedAt)),
        banActive(target) ? [h("dt", null, "Ban reason"), h("dd", { id: "ban-reason" }, target.banReason ?? "No reason"), h("dt", null, "Ban ends"), h("dd", null, target.banExpires ? when(target.banExpires) : "never")] : null,
      ),
    ),
  );
}

function rolesForm(ctx, target, path, self) {
  // The roles this page knows of; warden refuses others with a sentence naming the valid ones.
  const known = [...new Set(["user", "admin", ...ctx.user.roles, ...target.roles])];
  const boxes = known.map((role) => {
    const box = h("input", { type: "checkbox", name: "role", value: role, checked: target.roles.includes(role) || (role === "user" && target.roles.length === 0) });
    return h("label", { class: "check" }, box, role);
  });
  const other = h("input", { type: "text", name: "other-roles", autocomplete: "off", placeholder: "e.g. support" });
  const alert = ctx.alertBox();
  const save = h("button", { type: "submit" }, "Save roles");
  return h(
    "form",
    {
      class: "card",
      "aria-labelledby": "roles-title",
      onsubmit: (event) => {
        event.preventDefault();
        const roles = [
          ...boxes.map((l) => l.querySelector("input")).filter((b) => b.checked).map((b) => b.value),
          ...other.value.split(",").map((r) => r.trim()).filter(Boolean),
        ];
        ctx.act(save, alert, async () => {
          await api(`${path}/role`, { method: "PUT", body: { roles } });
          ctx.flash(`Roles set to ${roles.join(", ")}.`);
          if (self) await ctx.refreshAccess();
          ctx.reload();
        });
      },
    },
    h("h2", { id: "roles-title" }, "Roles"),
    h("fieldset", null, h("legend", null, "Roles held"), h("div", { class: "checks" }, boxes)),
    field("Other roles", other, "Comma-separated. Only roles the server is configured with are accepted."),
    alert,
    h("div", { class: "actions" }, save),
  );
}

function banForm(ctx, target, path, self) {
  const alert = ctx.alertBox();
  if (self) {
    return h("section", { class: "card", "aria-labelledby": "ban-title" }, h("h2", { id: "ban-title" }, "Ban"), h("p", { class: "muted" }, "You cannot ban yourself."));
  }
  if (target.banned) {
    // An ended ban still shows until lifted: lifting it clears the reason.
    const unban = h(
      "button",
      {
        type: "button",
        onclick: (e) =>
          ctx.act(e.currentTarget, alert, async () => {
            await api(`${path}/unban`, { method: "POST" });
            ctx.flash("The ban is lifted.");
            ctx.reload();
          }),
      },
      "Lift the ban",
    );
    return h(
      "section",
      { class: "card", "aria-labelledby": "ban-title" },
      h("h2", { id: "ban-title" }, "Ban"),
      banActive(target)
        ? h("p", null, "Banned: ", h("strong", null, target.banReason ?? "No reason"), target.banExpires ? [" until ", when(target.banExpires)] : " (no end)")
        : h("p", null, "The ban (", h("strong", null, target.banReason ?? "No reason"), ") ended ", when(target.banExpires), "."),
      alert,
      h("div", { class: "actions" }, unban),
    );
  }
  const reason = h("input", { type: "text", name: "reason", maxlength: "500", autocomplete: "off", placeholder: "No reason" });
  const duration = select({ name: "expires" }, DURATIONS, "");
  const ban = h("button", { type: "submit", class: "danger" }, "Ban user");
  return h(
    "form",
    {
      class: "card",
      "aria-labelledby": "ban-title",
      onsubmit: (event) => {
        event.preventDefault();
        const body = {};
        if (reason.value.trim()) body.reason = reason.value.trim();
        if (duration.value) body.expiresIn = Number(duration.value);
        ctx.act(ban, alert, async () => {
          await api(`${path}/ban`, { method: "POST", body });
          ctx.flash("The user is banned and signed out everywhere.");
          ctx.reload();
        });
      },
    },
    h("h2", { id: "ban-title" }, "Ban"),
    h("p", { class: "muted" }, "A ban signs the user out everywhere and refuses every request until it ends."),
    h("div", { class: "filter-grid" }, field("Reason", reason), field("Duration", duration)),
    alert,
    h("div", { class: "actions" }, ban),
  );
}

function sessionList(ctx, target, sessions, path) {
  const alert = ctx.alertBox();
  const revoking = ctx.can["session:revoke"];
  const rows = sessions.map((s) =>
    h(
      "tr",
      { "data-session-id": s.id },
      h("td", { "data-label": "Device" }, describeAgent(s.userAgent), s.current ? badge("this session", "accent") : null),
      h("td", { "data-label": "Address" }, s.ipAddress ?? h("span", { class: "muted" }, "unknown")),
      h("td", { "data-label": "Signed in" }, when(s.createdAt)),
      h("td", { "data-label": "Expires" }, when(s.expiresAt)),
      revoking
        ? h(
            "td",
            { "data-label": "" },
            h(
              "button",
              {
                type: "button",
                class: "secondary small",
                "aria-label": `Revoke the session on ${describeAgent(s.userAgent)}`,
                onclick: (e) =>
                  ctx.act(e.currentTarget, alert, async () => {
                    await api(`/admin/sessions/${encodeURIComponent(s.id)}`, { method: "DELETE" });
                    ctx.flash("The session is revoked.");
                    ctx.reload();
                  }),
              },
              "Revoke",
            ),
          )
        : null,
    ),
  );
  const all =
    revoking && sessions.length
      ? h(
          "button",
          {
            type: "button",
            class: "secondary",
            onclick: (e) =>
              ctx.act(e.currentTarget, alert, async () => {
                const { revoked } = await api(`${path}/sessions`, { method: "DELETE" });
                ctx.flash(`${revoked} session${revoked === 1 ? "" : "s"} revoked.`);
                ctx.reload();
              }),
          },
          "Revoke all sessions",
        )
      : null;
  const headers = ["Device", "Address", "Signed in", "Expires"];
  if (revoking) headers.push(h("span", { class: "visually-hidden" }, "Actions"));
  return h(
    "section",
    { class: "card", "aria-labelledby": "sessions-title" },
    h("div", { class: "toolbar" }, h("h2", { id: "sessions-title" }, `Sessions (${sessions.length})`), all),
    alert,
    sessions.length ? table(headers, rows, `Sessions of ${target.email}`) : h("p", { class: "empty" }, "No live session."),
  );
}

// ---------------------------------------------------------------- audit

const ACTIONS = {
  "user.set_role": "Roles changed",
  "user.ban": "Banned",
  "user.unban": "Ban lifted",
  "user.revoke_sessions": "Sessions revoked",
  "session.revoke": "Session revoked",
  "user.remove": "Removed",
};

const detailDate = new Intl.DateTimeFormat(undefined, { dateStyle: "medium", timeStyle: "short" });

/** One detail value as words (dates in the reader's format). */
function detailValue(v) {
  if (typeof v === "object") return JSON.stringify(v);
  if (typeof v === "string" && /^\d{4}-\d\d-\d\dT/.test(v) && !Number.isNaN(Date.parse(v))) return detailDate.format(new Date(v));
  return String(v);
}

/** An entry's details as words: "reason: spam · sessionsRevoked: 2". */
function details(value) {
  if (value === null || value === undefined) return "";
  if (typeof value !== "object") return String(value);
  return Object.entries(value)
    .filter(([, v]) => v !== null && v !== undefined)
    .map(([k, v]) => `${k}: ${detailValue(v)}`)
    .join(" · ");
}

function auditRows(ctx, entries, withTarget) {
  return entries.map((e) =>
    h(
      "tr",
      null,
      h("td", { "data-label": "When" }, when(e.at)),
      h("td", { "data-label": "By" }, userLink(ctx, e.actorId)),
      h("td", { "data-label": "Action" }, ACTIONS[e.action] ?? e.action),
      withTarget ? h("td", { "data-label": "User" }, userLink(ctx, e.targetUserId)) : null,
      h("td", { "data-label": "Details", class: "details" }, details(e.details)),
    ),
  );
}

function auditSection(ctx, audit, id) {
  return h(
    "section",
    { class: "card", "aria-labelledby": "audit-title" },
    h("div", { class: "toolbar" }, h("h2", { id: "audit-title" }, "Audit entries"), audit.total > audit.entries.length ? h("a", { href: `#/admin/audit?target=${encodeURIComponent(id)}` }, `All ${audit.total}`) : null),
    audit.entries.length ? table(["When", "By", "Action", "Details"], auditRows(ctx, audit.entries, false), "Audit entries about this user") : h("p", { class: "empty" }, "Nothing recorded about this user yet."),
  );
}

export async function audit(ctx) {
  const p = ctx.params;
  const q = {
    actor: p.get("actor") ?? "",
    target: p.get("target") ?? "",
    limit: PAGE_SIZES.includes(p.get("limit")) ? p.get("limit") : "50",
    offset: whole(p.get("offset"), 0),
  };
  const data = await api("/admin/audit", { query: q });
  const actor = h("input", { type: "text", name: "actor", value: q.actor, autocomplete: "off", placeholder: "user id" });
  const target = h("input", { type: "text", name: "target", value: q.target, autocomplete: "off", placeholder: "user id" });
  const values = () => ({ actor: actor.value.trim(), target: target.value.trim(), limit: q.limit });
  const form = h(
    "form",
    {
      class: "card filters",
      role: "search",
      "aria-label": "Filter the audit log",
      onsubmit: (event) => {
        event.preventDefault();
        ctx.go("/admin/audit", { ...values(), offset: 0 });
      },
    },
    h("div", { class: "filter-grid" }, field("By (admin id)", actor), field("About (user id)", target)),
    h("div", { class: "actions" }, h("button", { type: "submit" }, "Filter"), h("button", { type: "button", class: "secondary", onclick: () => ctx.go("/admin/audit") }, "Clear")),
  );
  return [
    ctx.heading("Audit log"),
    h("p", { class: "muted" }, "Every change made by an admin, newest first."),
    form,
    data.entries.length ? table(["When", "By", "Action", "User", "Details"], auditRows(ctx, data.entries, true), "Audit log") : h("p", { class: "empty" }, "No entries."),
    pager(data, data.entries.length, (offset) => ctx.go("/admin/audit", { ...values(), offset }), "entries"),
  ];
}

// ---------------------------------------------------------------- removal

function removal(ctx, target, path, self) {
  if (self) return null;
  const alert = ctx.alertBox();
  const confirm = h("button", { type: "button", class: "danger", id: "confirm-delete" }, "Delete user");
  const cancel = h("button", { type: "button", class: "secondary" }, "Cancel");
  const dialog = h(
    "dialog",
    { "aria-labelledby": "delete-title", "aria-describedby": "delete-text" },
    h("h2", { id: "delete-title" }, "Delete this user?"),
    h("p", { id: "delete-text" }, `${target.email} will be removed with their sessions and linked accounts. This cannot be undone.`),
    alert,
    h("div", { class: "actions" }, confirm, cancel),
  );
  cancel.addEventListener("click", () => dialog.close());
  confirm.addEventListener("click", () =>
    ctx.act(confirm, alert, async () => {
      await api(path, { method: "DELETE" });
      dialog.close();
      ctx.flash(`${target.email} is deleted.`);
      ctx.go("/admin/users");
    }),
  );
  const open = h("button", { type: "button", class: "danger", onclick: () => dialog.showModal() }, "Delete user…");
  return h(
    "section",
    { class: "card danger-zone", "aria-labelledby": "danger-title" },
    h("h2", { id: "danger-title" }, "Delete"),
    h("p", { class: "muted" }, "Removes the account for good."),
    h("div", { class: "actions" }, open),
    dialog,
  );
}
