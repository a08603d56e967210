// IPAM in a real browser: a pool and a subnet through the forms, an address
// allocated and released through htmx (no page reload), then its history.

import assert from "node:assert/strict";
import { describe, test } from "node:test";

import { signedInPage, suiteSession } from "./harness.js";

describe("IP address management", () => {
  const suite = suiteSession("ipam");

  test("create a pool and a subnet, allocate, release and see the history", async () => {
    const { page, problems } = await signedInPage(suite.session);

    await page.goto("/ipam/pools");
    await page.getByText("New pool", { exact: true }).click();
    const poolForm = page.locator("#new-pool");
    await poolForm.getByLabel("Name").fill("Browser pool");
    await poolForm.getByLabel("First address").fill("10.20.0.0");
    await poolForm.getByLabel("Last address").fill("10.20.255.255");
    await poolForm.getByLabel("DNS servers").fill("1.1.1.1\n9.9.9.9");
    await Promise.all([
      page.waitForURL(/\/ipam\/pools\/\d+$/),
      poolForm.getByRole("button", { name: "Create pool" }).click(),
    ]);
    assert.equal(await page.getByRole("heading", { level: 1 }).textContent(), "Browser pool");
    assert.match(await page.locator("#flash-area").textContent(), /Pool “Browser pool” created\./);

    await page.getByText("Add subnet", { exact: true }).first().click();
    const subnetForm = page.locator("#add-subnet");
    await subnetForm.getByLabel("Network (CIDR)").fill("10.20.0.0/24");
    await subnetForm.getByLabel("Gateway").fill("10.20.0.1");
    await Promise.all([
      page.waitForURL(/\/ipam\/subnets\/\d+$/),
      subnetForm.getByRole("button", { name: "Add subnet" }).click(),
    ]);
    assert.equal(await page.getByRole("heading", { level: 1 }).textContent(), "10.20.0.0/24");
    const subnetURL = page.url();

    // htmx swaps the allocations section: the page itself stays.
    await page.evaluate(() => {
      window.stillTheSamePage = true;
    });
    const allocate = page.locator("#allocate");
    await allocate.getByLabel("Username").fill("alice");
    await allocate.getByLabel("MAC address").fill("aa:bb:cc:00:00:01");
    await allocate.getByRole("button", { name: "Allocate" }).click();
    await page.locator("#allocation-message").getByText("Allocated 10.20.0.2 to alice (aa:bb:cc:00:00:01).").waitFor();
    const held = new Date();
    assert.ok(await page.getByRole("button", { name: "Release 10.20.0.2" }).isVisible());
    assert.equal(await page.evaluate(() => window.stillTheSamePage), true, "no reload");
    assert.equal(page.url(), subnetURL);

    // Let a whole second pass, so that a moment inside the holding exists
    // at the form's one-second resolution.
    await page.waitForTimeout(2100);
    await page.getByRole("button", { name: "Release 10.20.0.2" }).click();
    await page.locator("#allocation-message").getByText("Released 10.20.0.2 from alice").waitFor();
    assert.equal(await page.getByRole("button", { name: "Release 10.20.0.2" }).count(), 0);
    assert.equal(await page.evaluate(() => window.stillTheSamePage), true, "no reload");

    // The address links to its history.
    await Promise.all([
      page.waitForURL((url) => url.pathname === "/ipam/history"),
      page.getByRole("link", { name: "10.20.0.2" }).click(),
    ]);
    assert.equal(await page.getByRole("heading", { level: 1 }).textContent(), "Address history");
    assert.match(await page.locator("#holder").textContent(), /Nobody held 10\.20\.0\.2/);
    const timeline = await page.locator("#timeline").textContent();
    assert.match(timeline, /alice/);
    assert.match(timeline, /release/);

    // Who had it while it was held?
    const moment = new Date(Math.ceil(held.getTime() / 1000) * 1000).toISOString().slice(0, 19);
    await page.getByLabel("At (UTC)").fill(moment);
    await Promise.all([
      page.waitForURL((url) => url.searchParams.get("at") === moment),
      page.getByRole("button", { name: "Look up" }).click(),
    ]);
    const holder = await page.locator("#holder").textContent();
    assert.match(holder, /alice/);
    assert.match(holder, /aa:bb:cc:00:00:01/);

    assert.deepEqual(problems.take(), []);
  });
});
