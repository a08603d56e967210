// Every page of the side navigation, the keyboard path to it, and a
// screenshot of the dashboard.

import assert from "node:assert/strict";
import { stat } from "node:fs/promises";
import path from "node:path";
import { describe, test } from "node:test";

import { NAV, artifactsDir, freshPage, signedInPage, signIn, suiteSession } from "./harness.js";

describe("side navigation", () => {
  const suite = suiteSession("navigation");

  test("each link opens its page with no console error or failed request", async (t) => {
    const { page, problems } = await signedInPage(suite.session);
    assert.deepEqual(problems.take(), [], "signing in");

    const sidebar = page.locator("#sidebar");
    const labels = (await sidebar.getByRole("link").allTextContents()).map((s) => s.trim());
    assert.deepEqual(labels, NAV.map((item) => item.label), "the admin's navigation, in order");

    // Start away from the dashboard so that its link is a real navigation too.
    await page.goto("/audit");
    problems.take();
    for (const item of [...NAV.slice(1), NAV[0]]) {
      await t.test(item.label, async () => {
        const link = sidebar.getByRole("link", { name: item.label, exact: true });
        await Promise.all([page.waitForURL((url) => url.pathname === item.path), link.click()]);
        await page.waitForLoadState("load");
        assert.equal(await page.getByRole("heading", { level: 1 }).textContent(), item.heading);
        assert.equal(await page.title(), `${item.heading} · ispd`);
        assert.equal(
          await sidebar.getByRole("link", { name: item.label, exact: true }).getAttribute("aria-current"),
          "page",
          "the link of the page shown is marked current",
        );
        assert.equal(await sidebar.locator('[aria-current="page"]').count(), 1);
        assert.deepEqual(problems.take(), []);
      });
    }
  });

  test("the sidebar can be reached with the keyboard", async () => {
    const page = await freshPage(suite.session.context);
    await signIn(page);
    let reached = null;
    for (let presses = 0; presses < 20 && !reached; presses++) {
      await page.keyboard.press("Tab");
      reached = await page.evaluate(() => {
        const active = document.activeElement;
        return active && active.closest("#sidebar") && active.matches("a") ? active.textContent.trim() : null;
      });
    }
    assert.equal(reached, "Dashboard", "Tab reaches the first link of the side navigation");
    // The next Tab moves to the next link, and Enter follows it.
    await page.keyboard.press("Tab");
    assert.equal(await page.evaluate(() => document.activeElement.textContent.trim()), "IP Pools");
    await Promise.all([page.waitForURL((url) => url.pathname === "/ipam/pools"), page.keyboard.press("Enter")]);
    assert.equal(await page.getByRole("heading", { level: 1 }).textContent(), "IP Pools");
  });

  test("the first Tab offers a skip link to the content", async () => {
    const page = await freshPage(suite.session.context);
    await signIn(page);
    await page.keyboard.press("Tab");
    const skip = await page.evaluate(() => {
      const active = document.activeElement;
      return { text: active.textContent.trim(), href: active.getAttribute("href") };
    });
    assert.deepEqual(skip, { text: "Skip to content", href: "#main" });
  });

  test("the dashboard renders styled; full-page screenshot", async () => {
    const { page, problems } = await signedInPage(suite.session);
    await page.waitForLoadState("load");
    // Tailwind's bg-slate-900 on the header and a visible side navigation
    // show that the built stylesheet loaded.
    const headerBackground = await page.locator("header").evaluate((el) => getComputedStyle(el).backgroundColor);
    assert.equal(headerBackground, "rgb(15, 23, 42)", "the header has its Tailwind background");
    const sidebarWidth = await page.locator("#sidebar").evaluate((el) => el.getBoundingClientRect().width);
    assert.equal(sidebarWidth, 224, "the side navigation is w-56 on a wide screen");
    assert.equal(await page.locator("dl .card").count(), 6, "six counters on the dashboard");

    const file = path.join(await artifactsDir(), "dashboard.png");
    await page.screenshot({ path: file, fullPage: true });
    assert.ok((await stat(file)).size > 5_000, `${file} is a real picture`);
    assert.deepEqual(problems.take(), []);
  });
});
