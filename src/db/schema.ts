export { users } from '../users/table'
