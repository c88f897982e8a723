// The signed-in person's own pages: profile, sessions, linked accounts, organizations.

import { api } from "./api.js";
import { avatar, badge, describeAgent, field, h, safeImageUrl, when } from "./dom.js";

export async function profile(ctx) {
  const user = await ctx.currentUser();
  const name = h("input", { type: "text", name: "name", value: user.name, required: true, maxlength: "100", autocomplete: "name" });
  const image = h("input", { type: "url", name: "image", value: user.image ?? "", maxlength: "2048", placeholder: "https://…", autocomplete: "photo" });
  const alert = ctx.alertBox();
  const save = h("button", { type: "submit" }, "Save changes");
  const form = h(
    "form",
    {
      class: "card",
      "aria-labelledby": "edit-title",
      onsubmit: (event) => {
        event.preventDefault();
        ctx.act(save, alert, async () => {
          const picture = image.value.trim();
          const updated = await api("/users/me", { method: "PATCH", body: { name: name.value.trim(), image: picture === "" ? null : picture } });
          ctx.setUser(updated);
          ctx.flash("Profile saved.");
          ctx.reload();
        });
      },
    },
    h("h2", { id: "edit-title" }, "Edit profile"),
    field("Name", name),
    field("Picture URL", image, "The https address of an image (other addresses are kept but not shown). Leave empty for none."),
    alert,
    h("div", { class: "actions" }, save),
  );
  const roles = user.roles?.length ? user.roles : ["user"];
  return [
    ctx.heading("Profile"),
    h(
      "section",
      { class: "card profile", "aria-label": "Your account" },
      avatar(user),
      h(
        "div",
        { class: "profile-text" },
        h("p", { class: "profile-name", id: "profile-name" }, user.name),
        h("p", { class: "profile-email", id: "profile-email" }, user.email),
        h("p", { class: "badges" }, roles.map((r) => badge(r, r === "admin" ? "accent" : "")), user.emailVerified ? badge("email verified", "ok") : badge("email not verified")),
        h("dl", { class: "facts" }, h("dt", null, "Member since"), h("dd", null, when(user.createdAt)), h("dt", null, "User id"), h("dd", null, h("code", null, user.id))),
      ),
      safeImageUrl(user.image) === null && user.image ? h("p", { class: "hint" }, "Your picture is not an https address, so it is not shown.") : null,
    ),
    form,
  ];
}

export async function sessions(ctx) {
  const list = await api("/users/me/sessions");
  const alert = ctx.alertBox();
  const others = list.filter((s) => !s.current);
  const revokeAll = others.length
    ? h(
        "button",
        {
          type: "button",
          class: "secondary",
          id: "revoke-others",
          onclick: (e) =>
            ctx.act(e.currentTarget, alert, async () => {
              const { revoked } = await api("/users/me/sessions", { method: "DELETE" });
              ctx.flash(revoked === 1 ? "1 other session signed out." : `${revoked} other sessions signed out.`);
              ctx.reload();
            }),
        },
        "Sign out everywhere else",
      )
    : null;
  const item = (s) => {
    const device = describeAgent(s.userAgent);
    const revoke = s.current
      ? null
      : h(
          "button",
          {
            type: "button",
            class: "secondary small",
            "data-session": s.id,
            "aria-label": `Revoke the session on ${device}`,
            onclick: (e) =>
              ctx.act(e.currentTarget, alert, async () => {
                await api(`/users/me/sessions/${encodeURIComponent(s.id)}`, { method: "DELETE" });
                ctx.flash(`The session on ${device} is signed out.`);
                ctx.reload();
              }),
          },
          "Revoke",
        );
    return h(
      "li",
      { class: `card session${s.current ? " current" : ""}`, "data-session-id": s.id },
      h(
        "div",
        { class: "session-main" },
        h("p", { class: "session-device" }, device, s.current ? badge("this session", "accent") : null),
        h("p", { class: "muted small-text" }, s.ipAddress ? `from ${s.ipAddress}` : "address unknown"),
        h(
          "dl",
          { class: "facts" },
          h("dt", null, "Signed in"),
          h("dd", null, when(s.createdAt)),
          h("dt", null, "Last active"),
          h("dd", null, when(s.updatedAt)),
          h("dt", null, "Expires"),
          h("dd", null, when(s.expiresAt)),
        ),
      ),
      revoke,
    );
  };
  return [
    ctx.heading("Sessions"),
    h("div", { class: "toolbar" }, h("p", { class: "muted" }, "The devices signed in to your account."), revokeAll),
    alert,
    h("ul", { class: "plain-list", id: "session-list" }, list.map(item)),
  ];
}

const PROVIDERS = { credential: "Email and password", google: "Google", github: "GitHub" };

export async function accounts(ctx) {
  const list = await api("/users/me/accounts");
  const rows = list.map((a) =>
    h(
      "tr",
      null,
      h("td", { "data-label": "Provider" }, PROVIDERS[a.providerId] ?? a.providerId),
      h("td", { "data-label": "Account" }, h("code", null, a.accountId)),
      h("td", { "data-label": "Scopes" }, a.scopes?.length ? a.scopes.join(", ") : h("span", { class: "muted" }, "—")),
      h("td", { "data-label": "Linked" }, when(a.createdAt)),
    ),
  );
  return [
    ctx.heading("Linked accounts"),
    h("p", { class: "muted" }, "The ways you can sign in to this account."),
    list.length
      ? table(["Provider", "Account", "Scopes", "Linked"], rows, "Linked accounts")
      : h("p", { class: "empty" }, "No linked accounts."),
  ];
}

export async function organizations(ctx) {
  const list = await api("/users/me/organizations");
  const rows = list.map((o) =>
    h(
      "tr",
      null,
      h("td", { "data-label": "Organization" }, o.name, o.active ? badge("active", "accent") : null),
      h("td", { "data-label": "Slug" }, h("code", null, o.slug)),
      h("td", { "data-label": "Your roles" }, (o.roles ?? []).map((r) => badge(r))),
      h("td", { "data-label": "Joined" }, when(o.joinedAt)),
    ),
  );
  return [
    ctx.heading("Organizations"),
    list.length
      ? table(["Organization", "Slug", "Your roles", "Joined"], rows, "Your organizations")
      : h("p", { class: "empty" }, "You are not a member of any organization."),
  ];
}

/** A table that turns into labelled cards at phone width (CSS reads data-label). */
export function table(headers, rows, caption) {
  return h(
    "div",
    { class: "table-wrap" },
    h(
      "table",
      { class: "stack" },
      h("caption", { class: "visually-hidden" }, caption),
      h("thead", null, h("tr", null, headers.map((text) => h("th", { scope: "col" }, text)))),
      h("tbody", null, rows),
    ),
  );
}
