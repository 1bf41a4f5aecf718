export { outboxEvents } from '../events/table'
export { mailOutbox } from '../mail/table'
export { recoveryTokens } from '../recovery/table'
export { users } from '../users/table'
