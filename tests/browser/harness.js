// Shared set-up for the browser tests: a real `ispd run` on a free port with
// fresh SQLite files, and Debian's Chromium driven by playwright-core.
//
// This file is not a test itself (`node --test` picks up *.test.js only).

import { spawn } from "node:child_process";
import { existsSync } from "node:fs";
import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { after, before } from "node:test";
import { chromium } from "playwright-core";

export const REPO_DIR = path.resolve(fileURLToPath(new URL("../..", import.meta.url)));

/** Debian's `chromium` package; playwright-core never downloads a browser. */
export const CHROMIUM = "/usr/bin/chromium";

export const ADMIN_USERNAME = "admin";
export const ADMIN_PASSWORD = "browser-tests-only-Pa55word";

/** The side navigation of an admin, in order, with each page's heading. */
export const NAV = [
  { label: "Dashboard", path: "/", heading: "Dashboard" },
  { label: "IP Pools", path: "/ipam/pools", heading: "IP Pools" },
  { label: "Subnets", path: "/ipam/subnets", heading: "Subnets" },
  { label: "Allocations", path: "/ipam/allocations", heading: "Allocations" },
  { label: "Address history", path: "/ipam/history", heading: "Address history" },
  { label: "Network Users", path: "/users", heading: "Network Users" },
  { label: "Packages", path: "/packages", heading: "Packages" },
  { label: "Policies", path: "/policies", heading: "Policies" },
  { label: "RADIUS Accounting", path: "/radius/accounting", heading: "RADIUS Accounting" },
  { label: "Online users", path: "/radius/online", heading: "Online users" },
  { label: "NAS", path: "/radius/nas", heading: "NAS" },
  { label: "Routers", path: "/mikrotik/routers", heading: "Routers" },
  { label: "PPPoE Users", path: "/mikrotik/pppoe", heading: "PPPoE Users" },
  { label: "Live Sessions", path: "/mikrotik/sessions", heading: "Live Sessions" },
  { label: "Jobs", path: "/jobs", heading: "Jobs" },
  { label: "Audit log", path: "/audit", heading: "Audit log" },
  { label: "Webhooks", path: "/webhooks", heading: "Webhooks" },
  { label: "API tokens", path: "/tokens", heading: "API tokens" },
  { label: "Staff", path: "/staff", heading: "Staff" },
];

const STARTUP_TIMEOUT_MS = 30_000;
const STOP_TIMEOUT_MS = 5_000;

function targetDir() {
  return path.resolve(REPO_DIR, process.env.CARGO_TARGET_DIR || "target");
}

/** Where screenshots and server logs go: <target>/browser/. */
export async function artifactsDir() {
  const dir = path.join(targetDir(), "browser");
  await mkdir(dir, { recursive: true });
  return dir;
}

export function ispdBinary() {
  const bin = process.env.ISPD_BIN
    ? path.resolve(REPO_DIR, process.env.ISPD_BIN)
    : path.join(targetDir(), "debug", "ispd");
  if (!existsSync(bin)) {
    throw new Error(
      `ispd binary not found at ${bin}: build it with \`cargo build --bin ispd\` ` +
        "and point ISPD_BIN at it (make test does both)",
    );
  }
  return bin;
}

const ANSI = /\x1b\[[0-9;]*m/g; // eslint-disable-line no-control-regex

/**
 * Starts `ispd run` in a fresh temporary directory (cwd and DATA_DIR) and
 * resolves once it logs its address. `name` labels the log file. With
 * `{ firstRun: true }` no ADMIN_PASSWORD is given, so ispd makes one up and
 * prints it; `server.output()` returns what it printed.
 */
export async function startIspd(name, { firstRun = false } = {}) {
  const bin = ispdBinary();
  const staticDir = path.join(REPO_DIR, "static");
  if (!existsSync(path.join(staticDir, ".vite", "manifest.json"))) {
    throw new Error("static/.vite/manifest.json is missing: build the assets first (`make assets`)");
  }
  const workDir = await mkdtemp(path.join(tmpdir(), "ispd-browser-"));
  const dataDir = path.join(workDir, "data");
  await mkdir(dataDir);
  // Only what ispd needs: no DATABASE_URL, REDIS_URL, APP_URL... leaks in
  // from the caller's environment, and no .env is read (cwd is empty).
  const env = {
    PATH: process.env.PATH ?? "/usr/bin:/bin",
    HOME: process.env.HOME ?? workDir,
    TMPDIR: process.env.TMPDIR ?? tmpdir(),
    DATA_DIR: dataDir,
    STATIC_DIR: staticDir,
    ...(firstRun ? {} : { ADMIN_PASSWORD }),
    LISTEN_ADDR: "127.0.0.1:0",
    LOG_LEVEL: "info",
    LOG_FORMAT: "text",
    NO_COLOR: "1",
  };
  const child = spawn(bin, ["run"], { cwd: workDir, env, stdio: ["ignore", "pipe", "pipe"] });
  let log = "";
  child.stdout.setEncoding("utf8");
  child.stderr.setEncoding("utf8");
  child.stdout.on("data", (chunk) => (log += chunk));

  const exited = new Promise((resolve) => child.once("exit", (code, signal) => resolve({ code, signal })));
  const baseURL = await new Promise((resolve, reject) => {
    let stderr = "";
    const timer = setTimeout(() => {
      child.kill("SIGKILL");
      reject(new Error(`ispd did not say where it listens within ${STARTUP_TIMEOUT_MS} ms:\n${log}`));
    }, STARTUP_TIMEOUT_MS);
    child.stderr.on("data", (chunk) => {
      log += chunk;
      stderr += chunk.replace(ANSI, "");
      const match = /listening on (http:\/\/[0-9.]+:[0-9]+)/.exec(stderr);
      if (match) {
        clearTimeout(timer);
        resolve(match[1]);
      }
    });
    child.once("error", (error) => {
      clearTimeout(timer);
      reject(new Error(`cannot start ${bin}: ${error.message}`));
    });
    exited.then(({ code, signal }) => {
      clearTimeout(timer);
      reject(new Error(`ispd exited (code ${code}, signal ${signal}) before listening:\n${log}`));
    });
  });

  const server = {
    baseURL,
    /** Everything ispd printed so far (stdout and stderr). */
    output: () => log.replace(ANSI, ""),
    /** Stops ispd (SIGTERM, then SIGKILL), keeps its log, removes its files. */
    async stop() {
      if (child.exitCode === null && child.signalCode === null) {
        child.kill("SIGTERM");
        const timer = setTimeout(() => child.kill("SIGKILL"), STOP_TIMEOUT_MS);
        await exited;
        clearTimeout(timer);
      }
      await writeFile(path.join(await artifactsDir(), `${name}-ispd.log`), log.replace(ANSI, ""));
      await rm(workDir, { recursive: true, force: true });
    },
  };

  // A binary built before the staff pages existed answers 404 here, which
  // Chromium reports only as ERR_HTTP_RESPONSE_CODE_FAILURE: say it plainly.
  const login = await fetch(`${baseURL}/login`).catch((error) => error);
  if (!(login instanceof Response) || login.status !== 200) {
    await server.stop();
    const what = login instanceof Response ? `HTTP ${login.status}` : String(login);
    throw new Error(`${bin} answers GET /login with ${what}: is it stale? Rebuild it (cargo build --bin ispd)`);
  }
  return server;
}

/**
 * Launches Chromium headless with a fresh, empty profile. Returns the
 * browser context and a close() that also removes the profile.
 */
export async function launchBrowser(baseURL, options = {}) {
  if (!existsSync(CHROMIUM)) {
    throw new Error(`${CHROMIUM} not found: install Debian's \`chromium\` package (apt-get install chromium)`);
  }
  const profileDir = await mkdtemp(path.join(tmpdir(), "ispd-chromium-"));
  const context = await chromium.launchPersistentContext(profileDir, {
    executablePath: CHROMIUM,
    headless: true,
    // Without the background-networking flags Chromium keeps trying to reach
    // Google's hosts, which a closed CI network refuses.
    args: [
      "--headless",
      "--no-sandbox",
      "--disable-gpu",
      "--no-first-run",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
      "--disable-quic",
    ],
    baseURL,
    viewport: { width: 1280, height: 800 },
    ...options,
  });
  context.setDefaultTimeout(10_000);
  context.setDefaultNavigationTimeout(15_000);
  return {
    context,
    async close() {
      await context.close();
      await rm(profileDir, { recursive: true, force: true });
    },
  };
}

/** Starts ispd and Chromium together; stop() ends both. */
export async function startSession(name, browserOptions) {
  const server = await startIspd(name);
  let browser;
  try {
    browser = await launchBrowser(server.baseURL, browserOptions);
  } catch (error) {
    await server.stop();
    throw error;
  }
  return {
    baseURL: server.baseURL,
    context: browser.context,
    async stop() {
      try {
        await browser.close();
      } finally {
        await server.stop();
      }
    },
  };
}

/** A page with no cookies from earlier tests. */
export async function freshPage(context) {
  await context.clearCookies();
  for (const page of context.pages()) await page.close();
  return context.newPage();
}

/** Signs in through the login form and waits for the dashboard. */
export async function signIn(page, password = ADMIN_PASSWORD) {
  await page.goto("/login");
  await page.getByLabel("Username").fill(ADMIN_USERNAME);
  await page.getByLabel("Password").fill(password);
  await Promise.all([page.waitForURL((url) => url.pathname === "/"), page.getByRole("button", { name: "Sign in" }).click()]);
}

/**
 * Records everything that went wrong on a page: console errors, uncaught
 * exceptions, same-origin responses with status >= 400 and same-origin
 * requests that failed outright. `take()` returns and clears the list.
 */
export function watchProblems(page, baseURL) {
  const origin = new URL(baseURL).origin;
  let problems = [];
  const sameOrigin = (url) => {
    try {
      return new URL(url).origin === origin;
    } catch {
      return false;
    }
  };
  page.on("console", (message) => {
    if (message.type() === "error") problems.push(`console error: ${message.text()}`);
  });
  page.on("pageerror", (error) => problems.push(`uncaught exception: ${error.message}`));
  page.on("response", (response) => {
    if (response.status() >= 400 && sameOrigin(response.url())) {
      problems.push(`HTTP ${response.status()} for ${response.request().method()} ${response.url()}`);
    }
  });
  page.on("requestfailed", (request) => {
    if (sameOrigin(request.url())) {
      problems.push(`request failed: ${request.method()} ${request.url()} (${request.failure()?.errorText})`);
    }
  });
  return {
    take() {
      const taken = problems;
      problems = [];
      return taken;
    },
  };
}

/**
 * Starts `ispd mock-routeros` on a free port with `password`, and `extra`
 * arguments (e.g. simulated sessions); its host and port, and `stop()`.
 */
export async function startMockRouter(password, extra = []) {
  const child = spawn(
    ispdBinary(),
    ["mock-routeros", "--listen", "127.0.0.1:0", "--password", password, ...extra],
    { env: { PATH: process.env.PATH ?? "/usr/bin:/bin" }, stdio: ["ignore", "pipe", "pipe"] },
  );
  child.stdout.setEncoding("utf8");
  const addr = await new Promise((resolve, reject) => {
    let out = "";
    const timer = setTimeout(() => reject(new Error(`the mock router did not start:\n${out}`)), 15_000);
    child.stdout.on("data", (chunk) => {
      out += chunk;
      const match = /listening on (127\.0\.0\.1):([0-9]+)/.exec(out);
      if (match) {
        clearTimeout(timer);
        resolve({ host: match[1], port: Number(match[2]) });
      }
    });
    child.once("exit", (code) => reject(new Error(`the mock router exited (${code}):\n${out}`)));
  });
  return {
    ...addr,
    stop() {
      child.kill("SIGTERM");
    },
  };
}

/**
 * Runs a session named `name` for the tests of the enclosing `describe`,
 * started before them and stopped after them, with `browserOptions` for
 * its browser; with `mockRouter` (its password, then extra arguments),
 * also `ispd mock-routeros` (see startMockRouter). The returned object's `session`
 * and `mock` are set once the tests run.
 */
export function suiteSession(name, { browserOptions, mockRouter } = {}) {
  const suite = { session: undefined, mock: undefined };
  before(async () => {
    if (mockRouter) {
      const [password, ...extra] = mockRouter;
      suite.mock = await startMockRouter(password, extra);
    }
    suite.session = await startSession(name, browserOptions);
  });
  after(async () => {
    suite.mock?.stop();
    await suite.session?.stop();
  });
  return suite;
}

/** A fresh page of `session`, signed in as the admin, with its problems watched. */
export async function signedInPage(session) {
  const page = await freshPage(session.context);
  const problems = watchProblems(page, session.baseURL);
  await signIn(page);
  return { page, problems };
}
