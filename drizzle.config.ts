import { defineConfig } from 'drizzle-kit'

export default defineConfig({
  dialect: 'postgresql',
  schema: ['./src/users/table.ts', './src/events/table.ts'],
  out: './drizzle',
  casing: 'snake_case',
})
