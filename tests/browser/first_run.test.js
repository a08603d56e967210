// The first run, as a new user meets it: sign in with the password ispd
// printed, create an API token in the UI, then call the API with it.

import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";

import { ADMIN_USERNAME, freshPage, launchBrowser, startIspd } from "./harness.js";

describe("first run", () => {
  let server;
  let browser;
  before(async () => {
    server = await startIspd("first-run", { firstRun: true });
    browser = await launchBrowser(server.baseURL);
  });
  after(async () => {
    await browser?.close();
    await server?.stop();
  });

  test("the printed admin password signs in, and a token made in the UI works with the API", async () => {
    const printed = /Password:\s+(\S+)/.exec(server.output());
    assert.ok(printed, `ispd printed the first-run password:\n${server.output()}`);
    const password = printed[1];

    const page = await freshPage(browser.context);
    await page.goto("/login");
    await page.getByLabel("Username").fill(ADMIN_USERNAME);
    await page.getByLabel("Password").fill(password);
    await Promise.all([page.waitForURL("**/"), page.getByRole("button", { name: "Sign in" }).click()]);
    assert.equal(await page.getByRole("heading", { level: 1 }).textContent(), "Dashboard");

    await page.getByRole("link", { name: "API tokens" }).click();
    await page.getByLabel("Name").fill("curl");
    await page.getByLabel("Role").selectOption("viewer");
    await page.getByRole("button", { name: "Create token" }).click();
    const token = await page.locator("#new-token").inputValue();
    assert.match(token, /^ispd_/);

    const health = await fetch(`${server.baseURL}/api/v1/health`);
    assert.equal(health.status, 200);
    assert.equal((await health.json()).status, "ok");

    const anonymous = await fetch(`${server.baseURL}/api/v1/me`);
    assert.equal(anonymous.status, 401);
    assert.match(anonymous.headers.get("www-authenticate") ?? "", /^Bearer/);

    const auth = { headers: { Authorization: `Bearer ${token}` } };
    const me = await fetch(`${server.baseURL}/api/v1/me`, auth);
    assert.equal(me.status, 200);
    assert.deepEqual(await me.json(), { kind: "token", id: 1, name: "curl", role: "viewer" });

    const audit = await fetch(`${server.baseURL}/api/v1/audit-log`, auth);
    assert.equal(audit.status, 200);
    assert.ok((await audit.json()).data.some((entry) => entry.action === "token.create"));

    const forbidden = await fetch(`${server.baseURL}/api/v1/tokens`, auth);
    assert.equal(forbidden.status, 403, "a viewer token may not list tokens");
  });
});
