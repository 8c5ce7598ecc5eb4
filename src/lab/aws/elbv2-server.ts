import { isElbv2Action, type AwsAccount, type Elbv2Action, type Elbv2Input } from './account.js';
import { QueryProtocolServer } from './query-server.js';

/** ELBv2 over awsQuery (what the unmodified AWS SDK speaks), answered by the account's ALB model. */
export class Elbv2Server extends QueryProtocolServer {
  constructor(account: AwsAccount) {
    super({
      style: 'awsQuery',
      xmlns: 'http://elasticloadbalancing.amazonaws.com/doc/2015-12-01/',
      isAction: isElbv2Action,
      call: (action, params) => account.elbv2(action as Elbv2Action, params as unknown as Elbv2Input<Elbv2Action>, 'http'),
    });
  }
}
