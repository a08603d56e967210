// Routers and PPPoE users in a real browser, against `ispd mock-routeros`:
// add a router through its form, test the connection (identity, version
// and uptime shown), create a PPPoE user on it, and delete it after a
// confirmation. No page ever shows a password.

import assert from "node:assert/strict";
import { describe, test } from "node:test";

import { signedInPage, suiteSession } from "./harness.js";

const MOCK_PASSWORD = "mock-router-pass";
const PPP_PASSWORD = "ppp-Secret-42";

describe("routers and PPPoE users", () => {
  const suite = suiteSession("mikrotik", { mockRouter: [MOCK_PASSWORD] });

  test("a router is added and tested, and a PPPoE user created on it and deleted", async () => {
    const { page, problems } = await signedInPage(suite.session);

    await page.getByRole("link", { name: "Routers" }).click();
    await page.waitForURL((url) => url.pathname === "/mikrotik/routers");
    await page.getByText("No routers yet.").waitFor();
    await page.getByRole("link", { name: "New router" }).click();

    // An invalid address is refused inline; the password is not sent back.
    await page.getByLabel("Name", { exact: true }).fill("mock-core");
    await page.getByLabel("Address", { exact: true }).fill("not a host!");
    await page.getByLabel("API port").fill(String(suite.mock.port));
    await page.getByLabel("API user").fill("admin");
    await page.getByLabel("API password").fill(MOCK_PASSWORD);
    await Promise.all([page.waitForLoadState("load"), page.getByRole("button", { name: "Add router" }).click()]);
    await page.getByText("is not an IP address or a host name").waitFor();
    assert.equal(await page.getByLabel("API password").inputValue(), "");
    // That 422 (and the console's note of it) is the expected answer.
    assert.equal(problems.take().filter((p) => !/422/.test(p)).length, 0);
    await page.getByLabel("Address", { exact: true }).fill(suite.mock.host);
    await page.getByLabel("API password").fill(MOCK_PASSWORD);
    await Promise.all([page.waitForLoadState("load"), page.getByRole("button", { name: "Add router" }).click()]);
    await page.locator("#flash-area").getByText("Router “mock-core” added.").waitFor();

    await Promise.all([page.waitForLoadState("load"), page.getByRole("button", { name: "Test connection" }).click()]);
    const result = page.locator("#test-result");
    assert.match(await result.textContent(), /Connected\. Identity: MikroTik; RouterOS 7\.16\.2 \(stable\); up /);
    assert.doesNotMatch(await page.content(), new RegExp(MOCK_PASSWORD));

    // A PPPoE user on it.
    await page.getByRole("link", { name: "PPPoE Users" }).click();
    await page.getByText("No PPPoE secrets yet.").waitFor();
    await page.getByRole("link", { name: "New PPPoE user" }).click();
    await page.getByLabel("Router", { exact: true }).selectOption({ label: "mock-core" });
    await page.getByLabel("Username", { exact: true }).fill("alice");
    await page.getByLabel("Password", { exact: true }).fill(PPP_PASSWORD);
    await page.getByLabel("Remote address").fill("100.64.0.10");
    await Promise.all([
      page.waitForLoadState("load"),
      page.getByRole("button", { name: "Create on the router" }).click(),
    ]);
    await page.locator("#flash-area").getByText("PPPoE user “alice” created on the router.").waitFor();
    assert.match(await page.locator("dl").textContent(), /\*[0-9A-F]+/, "the router's item id");
    assert.doesNotMatch(await page.content(), new RegExp(PPP_PASSWORD));

    // Delete asks first; dismissing keeps it.
    const remove = page.getByRole("button", { name: "Delete PPPoE user" });
    page.once("dialog", (dialog) => dialog.dismiss());
    await remove.click();
    await page.waitForTimeout(300);
    assert.match(page.url(), /\/mikrotik\/pppoe\/[0-9]+$/);
    page.once("dialog", (dialog) => {
      assert.match(dialog.message(), /Delete PPPoE user alice\? Its secret is removed from router mock-core/);
      dialog.accept();
    });
    await Promise.all([page.waitForLoadState("load"), remove.click()]);
    await page.locator("#flash-area").getByText("PPPoE user “alice” deleted from the router.").waitFor();
    await page.getByText("No PPPoE secrets yet.").waitFor();
    assert.deepEqual(problems.take(), []);
  });
});
