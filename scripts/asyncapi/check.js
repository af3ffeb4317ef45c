// Parses an AsyncAPI document with the official parser (@asyncapi/parser,
// pinned in package.json) and exits non-zero on any diagnostic of error
// severity; warnings and hints are printed but do not fail.
//
//   node check.js ../../docs/asyncapi.yaml
'use strict';
const path = require('path');
const { Parser, fromFile, DiagnosticSeverity } = require('@asyncapi/parser');

async function main() {
  const file = process.argv[2];
  if (!file) {
    console.error('usage: node check.js <asyncapi document>');
    process.exit(2);
  }
  const source = path.resolve(file);
  const { document, diagnostics } = await fromFile(new Parser(), source).parse({ source });
  const names = { [DiagnosticSeverity.Error]: 'error', [DiagnosticSeverity.Warning]: 'warning',
    [DiagnosticSeverity.Information]: 'info', [DiagnosticSeverity.Hint]: 'hint' };
  let errors = 0;
  for (const d of diagnostics) {
    if (d.severity === DiagnosticSeverity.Error) errors++;
    const where = (d.path || []).join('.');
    console.log(`${names[d.severity] || d.severity}: ${d.code}: ${d.message}${where ? ` at ${where}` : ''}`);
  }
  if (errors > 0 || !document) {
    console.error(`${file}: ${errors} error(s)`);
    process.exit(1);
  }
  const channels = document.channels().all().map((c) => c.address());
  console.log(`${file}: valid AsyncAPI ${document.version()}, channels: ${channels.join(', ')}`);
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
