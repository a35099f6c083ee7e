// Pulumi component for hasan: `new HasanOperator(...)` installs the operator from the Helm chart;
// `new HASanTarget(...)` declares a pair with a typed spec.
export {
  HasanOperator,
  HasanOperatorValuesError,
  defaultChartPath,
  type HasanOperatorArgs,
} from "./hasan-operator.js";
export { HASanTarget, HASanTargetSpecError, type HASanTargetArgs } from "./hasan-target.js";
export { ChartValuesSchema, type ChartValues } from "./chart-values.js";
