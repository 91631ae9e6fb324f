// Logs in as a viewer, then as an operator, and clicks "Roll back" as each:
// the viewer is refused, the operator's rollback takes effect.
// Usage: node actions.mjs ADMIN_URL VIEWER_TOKEN OPERATOR_TOKEN
import { chromium } from "playwright-core";

const [admin, viewer, operator] = process.argv.slice(2);
const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
  args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync"],
});
async function as(token) {
  const ctx = await browser.newContext();
  const page = await ctx.newPage();
  page.on("dialog", (d) => d.accept());
  await page.goto(`${admin}/admin/monitoring`); // redirected to the login form
  const login_shown = page.url().endsWith("/admin/login");
  await page.fill("#token", token);
  await Promise.all([page.waitForURL("**/admin/monitoring"), page.click("#login")]);
  await page.waitForSelector("#actions:not([hidden])");
  await page.click("button[data-act=rollback]");
  await page.waitForFunction(() => document.getElementById("action-result").textContent !== "");
  const result = await page.textContent("#action-result");
  const role = await page.textContent("#who");
  const cookie = (await ctx.cookies()).find((c) => c.name === "canary_session");
  await ctx.close();
  return { login_shown, role, result, http_only: cookie?.httpOnly, same_site: cookie?.sameSite };
}
try {
  const v = await as(viewer);
  const o = await as(operator);
  console.log(JSON.stringify({ viewer: v, operator: o }));
} finally {
  await browser.close();
}
