import postgres from 'postgres'
import { createTestDatabase } from './app'

// The old service's table as Django 3.2 created it for its custom user model, column types and all.
const OLD_TABLE_DDL = `create table userauth_baseuser (
  id uuid primary key,
  password varchar(128) not null,
  last_login timestamptz null,
  is_superuser boolean not null,
  email varchar(254) not null unique,
  full_name varchar(250) not null,
  profile_pic varchar(100) null,
  is_staff boolean not null,
  is_active boolean not null,
  date_joined timestamptz not null
)`

/** A row of the old table; timestamps as ISO text, microseconds included. */
export type OldRow = {
  id: string
  password: string
  last_login: string | null
  is_superuser: boolean
  email: string
  full_name: string
  profile_pic: string | null
  is_staff: boolean
  is_active: boolean
  date_joined: string
}

/** An active, unprivileged old user without a picture or a usable password, unless told otherwise. */
export const oldRow = (fields: Partial<OldRow> & Pick<OldRow, 'email'>): OldRow => ({
  id: crypto.randomUUID(),
  password: '!unusable',
  last_login: null,
  is_superuser: false,
  full_name: 'Someone',
  profile_pic: '',
  is_staff: false,
  is_active: true,
  date_joined: '2021-03-04T05:06:07.123456+00:00',
  ...fields,
})

/** A database of its own laid out as the old service's, holding `rows`. */
export async function createOldDatabase(rows: OldRow[]) {
  const database = await createTestDatabase('django_old')
  const sql = postgres(database.url, { max: 1, onnotice: () => {} })
  await sql.unsafe(OLD_TABLE_DDL)
  // Through JSON, so that the timestamps keep their microseconds (postgres.js would pass them through a Date).
  await sql`insert into userauth_baseuser select * from jsonb_populate_recordset(null::userauth_baseuser, ${sql.json(rows)})`
  return {
    url: database.url,
    sql,
    async drop() {
      await sql.end()
      await database.drop()
    },
  }
}
