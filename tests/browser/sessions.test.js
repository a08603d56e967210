// Live sessions in a real browser: a mock router (`ispd mock-routeros`
// with simulated PPPoE sessions) and a router that does not answer; the
// list refreshes itself through htmx (rates appear on the second reading,
// without a page reload), search filters it, and a disconnect asks first
// and then removes the session on the router.

import assert from "node:assert/strict";
import { describe, test } from "node:test";

import { signedInPage, suiteSession } from "./harness.js";

const MOCK_PASSWORD = "mock-router-pass";

describe("live sessions", () => {
  const suite = suiteSession("sessions", { mockRouter: [MOCK_PASSWORD, "--sessions", "3"] });

  test("the list refreshes itself, filters, and disconnects after asking", async () => {
    const { page, problems } = await signedInPage(suite.session);

    // Two routers through the API (the page's session and CSRF token).
    const csrf = await page.locator('meta[name="csrf-token"]').getAttribute("content");
    for (const router of [
      { name: "mock-core", ip_address: suite.mock.host, api_port: suite.mock.port },
      { name: "dead-edge", ip_address: "127.0.0.1", api_port: 1 },
    ]) {
      const response = await page.request.post("/api/v1/mikrotik/routers", {
        headers: { "X-CSRF-Token": csrf },
        data: { ...router, username: "admin", password: MOCK_PASSWORD },
      });
      assert.equal(response.status(), 201, await response.text());
    }

    await page.getByRole("link", { name: "Live Sessions" }).click();
    await page.waitForURL((url) => url.pathname === "/mikrotik/sessions");
    assert.equal(await page.getByRole("heading", { level: 1 }).textContent(), "Live Sessions");
    const rows = page.locator("#live tbody tr");
    assert.equal(await rows.count(), 3);
    assert.match(await rows.first().textContent(), /demo1/);
    assert.match(await rows.first().textContent(), /02:00:00:00:00:01/);
    assert.equal(await page.locator('[data-router="mock-core"]').getAttribute("data-state"), "ok");
    const dead = page.locator('[data-router="dead-edge"]');
    assert.equal(await dead.getAttribute("data-state"), "unreachable");
    assert.match(await dead.textContent(), /unreachable/);

    // No rate on the first reading; htmx reloads the list within 5 s, and
    // the second reading has one. The page itself is not reloaded.
    await page.evaluate(() => {
      window.stillTheSamePage = true;
    });
    const firstRead = await page.locator("#live").getAttribute("data-read-at");
    assert.equal((await rows.first().locator('[data-rate="down"]').textContent()).trim(), "—");
    await page.waitForFunction(
      (before) => document.querySelector("#live")?.dataset.readAt !== before,
      firstRead,
      { timeout: 12_000 },
    );
    assert.match(await rows.first().locator('[data-rate="down"]').textContent(), /Mbit\/s/);
    assert.equal(await page.evaluate(() => window.stillTheSamePage), true, "no reload");

    // Search narrows the list (htmx swap, URL kept in history).
    await page.getByLabel("Search").fill("demo2");
    await page.getByRole("button", { name: "Filter" }).click();
    await page.waitForURL(/q=demo2/);
    await page.waitForFunction(() => document.querySelectorAll("#live tbody tr").length === 1);
    assert.match(await rows.first().textContent(), /demo2/);

    // Disconnect asks first; dismissing keeps the suite.session.
    const disconnect = rows.first().getByRole("button", { name: "Disconnect" });
    page.once("dialog", (dialog) => dialog.dismiss());
    await disconnect.click();
    await page.waitForTimeout(300);
    assert.equal(await rows.count(), 1);
    page.once("dialog", (dialog) => {
      assert.match(dialog.message(), /Disconnect demo2 from mock-core\?/);
      dialog.accept();
    });
    await Promise.all([page.waitForLoadState("load"), disconnect.click()]);
    await page.locator("#flash-area").getByText("Disconnected “demo2” from mock-core.").waitFor();
    assert.match(page.url(), /q=demo2/, "back to the same filters");
    await page.getByText("No session matches these filters.").waitFor();

    await page.goto("/mikrotik/sessions");
    assert.equal(await rows.count(), 2);
    assert.deepEqual(problems.take(), []);
  });
});
