// Files imported `with { type: 'file' }` resolve to a path (in a compiled binary, inside the binary).
declare module '*.wasm' {
  const path: string
  export default path
}
declare module '*.data' {
  const path: string
  export default path
}
