export { outboxEvents } from '../events/table'
export { users } from '../users/table'
