// Better-Auth deciding permission checks with its own code, for cases its HTTP endpoint cannot
// express: `POST /api/auth/admin/has-permission` takes no connector (its body schema has none,
// so it always uses AND), while its access-control roles' `authorize(request, connector)` does.
// Reads {"accessControl": <access-control.json>, "adminUserIds": [...], "cases":
// [{"userId", "role", "permissions", "connector"}]} on stdin and prints one boolean per case,
// decided exactly like the admin plugin's hasPermission with that connector.
import { pathToFileURL } from "node:url";
import { join } from "node:path";

const root = process.argv[2]; // the auth-server directory (its node_modules has better-auth)
const dist = join(root, "node_modules/better-auth/dist/plugins");
const { createAccessControl } = await import(pathToFileURL(join(dist, "access/index.mjs")));
const { defaultStatements } = await import(pathToFileURL(join(dist, "admin/access/index.mjs")));

let input = "";
for await (const chunk of process.stdin) input += chunk;
const { accessControl, adminUserIds, cases } = JSON.parse(input);
const ac = createAccessControl({ ...defaultStatements, audit: ["list"] });
const { organization: _orgRoles, ...adminRoles } = accessControl;
const roles = Object.fromEntries(Object.entries(adminRoles).map(([name, s]) => [name, ac.newRole(s)]));

// src/plugins/admin/has-permission.ts, with the connector passed on to authorize().
const decide = ({ userId, role, permissions, connector }) => {
  if (userId && adminUserIds.includes(userId)) return true;
  for (const r of (role || "user").split(",")) if (roles[r]?.authorize(permissions, connector)?.success) return true;
  return false;
};
process.stdout.write(JSON.stringify(cases.map(decide)));
