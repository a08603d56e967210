// A phone-width screen: the side navigation folds away behind "Menu".

import assert from "node:assert/strict";
import path from "node:path";
import { describe, test } from "node:test";

import { artifactsDir, freshPage, signedInPage, signIn, suiteSession } from "./harness.js";

const PHONE = { width: 390, height: 844 };

describe("phone-width screen (390x844)", () => {
  const suite = suiteSession("phone", { browserOptions: { viewport: PHONE, hasTouch: true } });

  test('the "Menu" button shows and hides the side navigation', async () => {
    const { page, problems } = await signedInPage(suite.session);
    const menu = page.getByRole("button", { name: "Menu" });
    const sidebar = page.locator("#sidebar");

    assert.ok(await menu.isVisible(), "the Menu button is shown");
    assert.equal(await menu.getAttribute("aria-expanded"), "false");
    assert.equal(await menu.getAttribute("aria-controls"), "sidebar");
    assert.ok(await sidebar.isHidden(), "the navigation starts folded away");

    await menu.click();
    await sidebar.waitFor({ state: "visible" });
    assert.equal(await menu.getAttribute("aria-expanded"), "true");
    assert.ok(await sidebar.getByRole("link", { name: "Staff", exact: true }).isVisible());

    await menu.click();
    await sidebar.waitFor({ state: "hidden" });
    assert.equal(await menu.getAttribute("aria-expanded"), "false");

    // Open again and follow a link: the new page starts with it folded.
    await menu.click();
    await Promise.all([
      page.waitForURL((url) => url.pathname === "/ipam/subnets"),
      sidebar.getByRole("link", { name: "Subnets", exact: true }).click(),
    ]);
    assert.equal(await page.getByRole("heading", { level: 1 }).textContent(), "Subnets");
    assert.ok(await sidebar.isHidden());
    assert.deepEqual(problems.take(), []);
  });

  test("the pages fit the screen width", async () => {
    const page = await freshPage(suite.session.context);
    await signIn(page);
    const overflow = [];
    for (const pathname of ["/", "/ipam/pools", "/tokens", "/staff"]) {
      await page.goto(pathname);
      const width = await page.evaluate(() => document.documentElement.scrollWidth);
      if (width > PHONE.width) overflow.push(`${pathname}: ${width}px wide`);
    }
    if (overflow.length) {
      await page.screenshot({ path: path.join(await artifactsDir(), "phone-overflow.png"), fullPage: true });
    }
    assert.deepEqual(overflow, [], "no page scrolls sideways at 390px");
  });

  test("the Menu button is not shown on a wide screen", async () => {
    const page = await freshPage(suite.session.context);
    await page.setViewportSize({ width: 1280, height: 800 });
    await signIn(page);
    assert.ok(await page.getByRole("button", { name: "Menu" }).isHidden());
    assert.ok(await page.locator("#sidebar").isVisible());
  });
});
