// Types of the files imported `with { type: "file" }` (lib/server/http/assets.ts): the
// import is the file's path, embedded by `bun build --compile`.
declare module "*.css" {
  const path: string;
  export default path;
}
declare module "*.min.js" {
  const path: string;
  export default path;
}
declare module "*/static/app.js" {
  const path: string;
  export default path;
}
declare module "*/static/auth.js" {
  const path: string;
  export default path;
}
declare module "*/static/chart.js" {
  const path: string;
  export default path;
}
declare module "*.svg" {
  const path: string;
  export default path;
}
declare module "*.png" {
  const path: string;
  export default path;
}
declare module "*.webmanifest" {
  const path: string;
  export default path;
}
