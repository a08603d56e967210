// Signing in and out, and CSRF protection, in a real browser.

import assert from "node:assert/strict";
import { describe, test } from "node:test";

import { ADMIN_PASSWORD, ADMIN_USERNAME, freshPage, signIn, suiteSession } from "./harness.js";

describe("staff sign-in", () => {
  const suite = suiteSession("auth");

  test("the right password lands on the dashboard", async () => {
    const page = await freshPage(suite.session.context);
    const response = await page.goto("/");
    assert.equal(new URL(page.url()).pathname, "/login", "an anonymous visit is sent to the login page");
    assert.equal(response.status(), 200);
    await signIn(page);
    assert.equal(await page.getByRole("heading", { level: 1 }).textContent(), "Dashboard");
    assert.equal(await page.title(), "Dashboard · ispd");
    const current = page.locator('#sidebar a[aria-current="page"]');
    assert.equal(await current.textContent(), "Dashboard");
    assert.match(await page.locator("header").textContent(), new RegExp(`${ADMIN_USERNAME}\\s*\\(admin\\)`));
  });

  test('a wrong password shows "Wrong username or password."', async () => {
    const page = await freshPage(suite.session.context);
    await page.goto("/login");
    await page.getByLabel("Username").fill(ADMIN_USERNAME);
    await page.getByLabel("Password").fill("not-the-password-at-all");
    const [response] = await Promise.all([
      page.waitForResponse((r) => r.request().method() === "POST" && new URL(r.url()).pathname === "/login"),
      page.getByRole("button", { name: "Sign in" }).click(),
    ]);
    assert.equal(response.status(), 401);
    await page.waitForLoadState();
    assert.equal(new URL(page.url()).pathname, "/login");
    assert.equal((await page.getByRole("alert").textContent()).trim(), "Wrong username or password.");
    assert.equal(await page.getByLabel("Username").inputValue(), ADMIN_USERNAME, "the username is kept");
    assert.equal(await page.getByLabel("Password").inputValue(), "", "the password is not echoed back");
    assert.equal(await page.locator("#sidebar").count(), 0, "no navigation before signing in");
  });

  test("signing out returns to the login page and locks the pages again", async () => {
    const page = await freshPage(suite.session.context);
    await signIn(page);
    await Promise.all([
      page.waitForURL((url) => url.pathname === "/login"),
      page.getByRole("button", { name: "Sign out" }).click(),
    ]);
    assert.equal((await page.getByRole("status").textContent()).trim(), "You are signed out.");
    assert.equal(await page.getByRole("heading", { level: 1 }).textContent(), "Sign in to ispd");

    await page.goto("/ipam/pools");
    const url = new URL(page.url());
    assert.equal(url.pathname, "/login", "a protected page redirects to the login page");
    assert.equal(url.searchParams.get("next"), "/ipam/pools");
    assert.equal(await page.getByRole("button", { name: "Sign out" }).count(), 0);

    // Signing in again goes back to the page that was asked for.
    await page.getByLabel("Username").fill(ADMIN_USERNAME);
    await page.getByLabel("Password").fill(ADMIN_PASSWORD);
    await Promise.all([
      page.waitForURL((u) => u.pathname === "/ipam/pools"),
      page.getByRole("button", { name: "Sign in" }).click(),
    ]);
    assert.equal(await page.getByRole("heading", { level: 1 }).textContent(), "IP Pools");
  });

  test("a form with a wrong security token is refused with 403", async () => {
    const page = await freshPage(suite.session.context);
    await signIn(page);
    await page.goto("/tokens");
    await page.getByLabel("Name").fill("csrf-probe");
    const form = page.locator('form[action="/tokens"]');
    const original = await form.locator('input[name="csrf_token"]').inputValue();
    assert.ok(original.length >= 16, "the form carries a CSRF token");
    await form.evaluate((element) => {
      element.querySelector('input[name="csrf_token"]').value = "forged-token";
    });
    const [response] = await Promise.all([
      page.waitForResponse((r) => r.request().method() === "POST" && new URL(r.url()).pathname === "/tokens"),
      form.getByRole("button", { name: "Create token" }).click(),
    ]);
    assert.equal(response.status(), 403);
    await page.waitForLoadState();
    assert.equal(await page.getByRole("heading", { level: 1 }).textContent(), "Not allowed");
    assert.match(await page.locator("main").textContent(), /security token/);

    // Nothing was created, and the session survived.
    await page.goto("/tokens");
    assert.equal(await page.getByRole("heading", { level: 1 }).textContent(), "API tokens");
    assert.equal(await page.getByText("csrf-probe").count(), 0, "the forged request created no token");
    assert.equal(await page.getByText("No API tokens yet.").count(), 1);
  });
});
