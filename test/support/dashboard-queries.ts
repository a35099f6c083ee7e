/** The queries of hasan's Grafana dashboard, with Grafana's variables replaced as for "All". */
import { z } from "zod";

const Dashboard = z.object({
  panels: z.array(
    z.object({
      title: z.string(),
      type: z.string(),
      targets: z.array(z.object({ expr: z.string() })).optional(),
    }),
  ),
  templating: z
    .object({
      list: z.array(z.object({ name: z.string(), type: z.string(), definition: z.string().optional() })),
    })
    .optional(),
});

/** $__rate_interval as Grafana computes it for a 30 s scrape interval, the others as "All". */
export function grafanaExpand(expr: string): string {
  return expr.replaceAll("$__rate_interval", "2m").replaceAll("$namespace", ".*").replaceAll("$target", ".*");
}

/** Every panel's queries (rows have none); throws when a panel has no query. */
export function dashboardQueries(json: string): { title: string; expr: string }[] {
  const out: { title: string; expr: string }[] = [];
  for (const p of Dashboard.parse(JSON.parse(json)).panels) {
    if (p.type === "row") continue;
    if (!p.targets?.length) throw new Error(`panel ${p.title} has no query`);
    for (const t of p.targets) out.push({ title: p.title, expr: grafanaExpand(t.expr) });
  }
  return out;
}

/**
 * The query variables, each `label_values(selector, label)` as the selector (expanded) and the label
 * whose values fill the variable's list; throws on another kind of variable query.
 */
export function dashboardVariables(json: string): { name: string; selector: string; label: string }[] {
  const out: { name: string; selector: string; label: string }[] = [];
  for (const v of Dashboard.parse(JSON.parse(json)).templating?.list ?? []) {
    if (v.type !== "query") continue;
    const m = /^label_values\((.+),\s*([a-zA-Z_][a-zA-Z0-9_]*)\)$/.exec(v.definition ?? "");
    if (!m) throw new Error(`variable ${v.name}: not a label_values() query: ${v.definition}`);
    out.push({ name: v.name, selector: grafanaExpand(m[1]!), label: m[2]! });
  }
  return out;
}
