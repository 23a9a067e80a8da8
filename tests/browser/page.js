#!/usr/bin/env node
// A small, general browser harness for Thwonk's tests: headless Chromium
// (/usr/bin/chromium, or $CHROMIUM) driven over the DevTools protocol by playwright-core.
//
//   node tests/browser/page.js '{"url": "...", "screenshot": "out.png",
//                                "evaluate": ["document.title", "fetch('/v1/x').then(r => r.status)"],
//                                "waitFor": "h1", "width": 1000, "height": 700}'
//
// Opens `url`, waits for the load (and for the `waitFor` selector when given), evaluates
// each expression in the page (an expression's promise is awaited; a rejection is reported
// as {error}), saves a full-page screenshot when asked, and prints one JSON object:
//   {status, url, title, text, headers, console: [...], pageErrors: [...],
//    failedRequests: [...], evaluated: [{value} | {error}]}
// Exit status 0 when the page was reached, 2 on a harness failure (with {harnessError}).

const { chromium } = require("playwright-core");

async function main() {
  const plan = JSON.parse(process.argv[2] || "{}");
  const report = { console: [], pageErrors: [], failedRequests: [], evaluated: [] };
  const browser = await chromium.launch({
    executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
    headless: true,
    args: ["--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu"],
  });
  try {
    const page = await browser.newPage({
      viewport: { width: plan.width || 1000, height: plan.height || 700 },
    });
    page.on("console", (m) => report.console.push(`${m.type()}: ${m.text()}`));
    page.on("pageerror", (e) => report.pageErrors.push(String(e)));
    page.on("requestfailed", (r) =>
      report.failedRequests.push({ url: r.url(), failure: r.failure()?.errorText ?? "" }),
    );
    const response = await page.goto(plan.url, { waitUntil: "load", timeout: 30000 });
    report.status = response ? response.status() : null;
    report.headers = response ? await response.allHeaders() : {};
    if (plan.waitFor) await page.waitForSelector(plan.waitFor, { timeout: 10000 });
    for (const expression of plan.evaluate || []) {
      try {
        // Awaited in the page: a promise's value, or its rejection as an error.
        const value = await page.evaluate(`(async () => (${expression}))()`);
        report.evaluated.push({ value: value === undefined ? null : value });
      } catch (e) {
        report.evaluated.push({ error: String(e.message || e).split("\n")[0] });
      }
    }
    report.url = page.url();
    report.title = await page.title();
    report.text = await page.evaluate(() => document.body ? document.body.innerText : "");
    if (plan.screenshot) await page.screenshot({ path: plan.screenshot, fullPage: true });
  } finally {
    await browser.close();
  }
  process.stdout.write(JSON.stringify(report) + "\n");
}

main().catch((e) => {
  process.stdout.write(JSON.stringify({ harnessError: String(e.stack || e) }) + "\n");
  process.exit(2);
});
