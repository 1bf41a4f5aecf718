import { eq, sql } from 'drizzle-orm'
import { preparedPerDatabase, type Database } from '../db'
import { users } from './table'

// Below both the cache and the service: the cache reads through these, the service invalidates the cache.
const userById = preparedPerDatabase((db) =>
  db.select().from(users).where(eq(users.id, sql.placeholder('id'))).prepare('user_by_id'),
)
const userByEmail = preparedPerDatabase((db) =>
  db.select().from(users).where(eq(users.email, sql.placeholder('email'))).prepare('user_by_email'),
)

export async function findUserById(db: Database, id: string) {
  const [user] = await userById(db).execute({ id })
  return user
}

export async function findUserByEmail(db: Database, email: string) {
  const [user] = await userByEmail(db).execute({ email: email.toLowerCase() })
  return user
}
