import { join } from 'node:path'
import ts from 'typescript5'

// The repo's TypeScript (7, the native port) has no compiler API; TypeScript 5 is a dev dependency for this only.

/**
 * Server types a browser does not have, and what the client sees in their place. Any other name the browser
 * lacks fails the build, where the declarations are checked under a browser tsconfig.
 */
const BROWSER_EQUIVALENTS: [RegExp, string][] = [
  // The Swagger UI's static files: a Bun file is a Blob.
  [/\bBunFile\b/g, 'Blob'],
  // Elysia's type of a wildcard route's params (the pictures' media route).
  [/\b_ResolvePath<"[^"]*">/g, '{ "*": string; }'],
]

/**
 * The server's `App['~Routes']` written out in full: every body, query and answer as a plain object type, so
 * that the published client's declarations need none of the server's modules or dependencies. Read with the
 * server's own compiler settings, so it is the type Eden sees.
 */
export function routesTypeText(root: string): string {
  const probe = join(root, 'src/client/routes.ts')
  const config = ts.getParsedCommandLineOfConfigFile(join(root, 'tsconfig.json'), {}, { ...ts.sys, onUnRecoverableConfigFileDiagnostic: fail })
  if (!config) throw new Error('could not read tsconfig.json')
  const program = ts.createProgram([probe], { ...config.options, noEmit: true })
  const checker = program.getTypeChecker()
  const alias = program.getSourceFile(probe)?.statements.find(ts.isTypeAliasDeclaration)
  if (!alias || alias.name.text !== 'Routes') throw new Error(`${probe} must declare type Routes`)
  const flags = ts.NodeBuilderFlags.NoTruncation | ts.NodeBuilderFlags.InTypeAlias | ts.NodeBuilderFlags.IgnoreErrors | ts.NodeBuilderFlags.MultilineObjectLiterals
  const node = checker.typeToTypeNode(checker.getTypeAtLocation(alias.name), undefined, flags)
  if (!node) throw new Error('could not write out the Routes type')
  const printed = ts.createPrinter({ newLine: ts.NewLineKind.LineFeed }).printNode(ts.EmitHint.Unspecified, node, ts.createSourceFile('routes.ts', '', ts.ScriptTarget.ESNext))
  return BROWSER_EQUIVALENTS.reduce((text, [server, browser]) => text.replace(server, browser), printed)
}

function fail(diagnostic: ts.Diagnostic): never {
  throw new Error(ts.flattenDiagnosticMessageText(diagnostic.messageText, '\n'))
}
