// Opens the dashboard in headless Chromium (Debian's /usr/bin/chromium) and
// reports what a person would see, as one JSON line: the share shown next to
// the API's, how many charts drew, how many points the stream delivered.
// Usage: node dashboard.mjs ADMIN_URL SCREENSHOT_PATH
import { chromium } from "playwright-core";

const [admin, shot] = process.argv.slice(2);
const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
  args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync"],
});
try {
  const page = await browser.newPage({ viewport: { width: 1400, height: 1000 } });
  await page.goto(`${admin}/admin/monitoring`);
  await page.waitForFunction(() => document.body.dataset.share !== undefined, null, { timeout: 15000 });
  // Points on the charts once the first frame is in: its past, and itself.
  const first_points = await page.evaluate(() => data.t.length);
  // Of those from before the page opened, the ones with canary traffic.
  const past_canary = await page.evaluate(() => data.c_rps.slice(0, -1).filter((x) => x > 0).length);
  // A few frames of the stream: until the four charts drew, the verdict table
  // filled and the stream is live, or 20 s (a loaded machine draws slowly).
  // What is seen then is reported either way, for the test to judge.
  await page
    .waitForFunction(
      () =>
        document.querySelectorAll(".uplot canvas").length >= 4 &&
        document.querySelectorAll("#verdict tbody tr").length >= 5 &&
        document.getElementById("conn").textContent === "live",
      null,
      { timeout: 20000, polling: 250 },
    )
    .catch(() => {});
  const seen = await page.evaluate(async () => {
    const api = await (await fetch("/api/routing")).json();
    const points = document.querySelectorAll(".u-legend").length;
    return {
      share_shown: document.getElementById("share").textContent,
      share_api: api.share,
      state: document.getElementById("state").textContent,
      charts: document.querySelectorAll(".uplot canvas").length,
      legends: points,
      verdict_rows: document.querySelectorAll("#verdict tbody tr").length,
      connection: document.getElementById("conn").textContent,
    };
  });
  seen.first_points = first_points;
  seen.past_canary = past_canary;
  // The request log's panel lists requests; a click on a criterion shows the
  // canary's failures there, with the same as a `canary logs` command.
  await page.waitForFunction(() => document.querySelectorAll("#logs tbody tr").length > 0, null, { timeout: 20000 }).catch(() => {});
  seen.log_rows = await page.evaluate(() => document.querySelectorAll("#logs tbody tr").length);
  await page.click("#verdict tbody tr").catch(() => {});
  await page.waitForFunction(() => document.getElementById("logs-cmd").textContent.includes("--errors"), null, { timeout: 10000 }).catch(() => {});
  seen.log_command = await page.evaluate(() => document.getElementById("logs-cmd").textContent);
  if (shot) await page.screenshot({ path: shot });
  // Laptop width: no word of a table is split over two lines ("threshol d").
  await page.setViewportSize({ width: 1280, height: 800 });
  seen.split_words = await page.evaluate(() => {
    const split = [];
    for (const cell of document.querySelectorAll("table th, table td")) {
      const walker = document.createTreeWalker(cell, NodeFilter.SHOW_TEXT);
      for (let node = walker.nextNode(); node; node = walker.nextNode()) {
        for (const m of node.textContent.matchAll(/\S+/g)) {
          const r = document.createRange();
          r.setStart(node, m.index);
          r.setEnd(node, m.index + m[0].length);
          // A word on two lines has a box on each.
          const tops = new Set([...r.getClientRects()].map((b) => Math.round(b.top)));
          if (tops.size > 1) split.push(m[0]);
        }
      }
    }
    return split;
  });
  // Narrow screen: the page must still lay out (no horizontal scroll).
  await page.setViewportSize({ width: 390, height: 844 });
  seen.phone_overflow = await page.evaluate(() => document.documentElement.scrollWidth > window.innerWidth + 1);
  console.log(JSON.stringify(seen));
} finally {
  await browser.close();
}
