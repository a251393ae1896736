// Locations and errors of the config language. Every error carries file:line:column so the operator
// can jump to it; formatConfigError is the one place that decides how that reads.

export interface SourceLocation { file: string; line: number; column: number }
export interface ConfigError extends SourceLocation { message: string }

/** "file:line:column: message", the form compilers use, so editors can jump to it. */
export function formatConfigError(e: ConfigError): string {
  return `${e.file}:${e.line}:${e.column}: ${e.message}`;
}

/** "file:line:column: warning: message": a config that loads but exposes something. */
export function formatConfigWarning(e: ConfigError): string {
  return `${e.file}:${e.line}:${e.column}: warning: ${e.message}`;
}

export function at(where: SourceLocation, message: string): ConfigError {
  return { file: where.file, line: where.line, column: where.column, message };
}
